-- user_db: %(users)s employees (ids follow the bench admin), as if each had signed in once.
INSERT INTO users (google_sub, email, name, picture, role, created_at, updated_at, last_login_at)
SELECT 'bench-sub-' || i,
       format('user%%s@example.com', lpad(i::text, 5, '0')),
       (ARRAY['Ada', 'Grace', 'Alan', 'Edsger', 'Barbara', 'Donald', 'Frances', 'Ken'])[1 + i %% 8]
         || ' ' || (ARRAY['Lovelace', 'Hopper', 'Turing', 'Dijkstra', 'Liskov', 'Knuth', 'Allen',
                          'Thompson'])[1 + (i / 8) %% 8] || ' ' || i,
       'https://example.com/avatars/' || i || '.png',
       'employee',
       now() - interval '1 day' * (i %% 700),
       now() - interval '1 day' * (i %% 700),
       now() - interval '1 hour' * (i %% 500)
FROM generate_series(1, %(users)s) AS i;
