-- reservation_db: reservations number %(lo)s .. %(hi)s - 1 of the bench data set.
-- Reservation g belongs to room 1 + g %% rooms, is the k-th (k = g / rooms) of that room and takes
-- slot (k * 731 + room * 37) %% 7300 of the room's grid: 730 days from a year ago, 10 one-hour
-- slots a day from 08:00 UTC.  731 is prime to 7300, so one room's slots never repeat (k < 7300)
-- and never overlap; every room's first reservations already spread over the two years.
-- 1 in 33 is cancelled; a third last 30 minutes; the rest one hour.
-- The organizer is employee o = (g * 7919 + 13) %% users (user id uid_lo + o, e-mail
-- user<o + 1, five digits>@example.com as seed_users.sql writes it).  The attendees (issue 14)
-- depend on the purpose: a 1:1 has one, an interview or a customer call two, a design review
-- three, a team sync four, a retro five, a sprint planning six, a workshop eight, at most the
-- room's capacity less the organizer: about 3 a reservation, so an employee is invited to ~3 times
-- as many meetings as they organise.  Attendee i (1..n) is employee (o + i * s) %% users with
-- s = 1 + (g * 31) %% (users / 10 + 1): never the organizer, never twice (i * s < users).
INSERT INTO reservations (room_id, user_id, purpose, start_time, end_time, status, cancel_reason,
                          created_at, updated_at, version, attendees, attendees_key,
                          organizer_email)
SELECT s.room,
       %(uid_lo)s + s.o,
       (ARRAY['Team sync', '1:1', 'Sprint planning', 'Interview', 'Customer call', 'Retro',
              'Design review', 'Workshop'])[1 + s.g %% 8],
       t.st,
       t.st + CASE WHEN s.g %% 3 = 0 THEN interval '30 minutes' ELSE interval '1 hour' END,
       CASE WHEN s.g %% 33 = 0 THEN 'cancelled' ELSE 'confirmed' END,
       CASE WHEN s.g %% 33 = 0 THEN 'cancelled_by_user' END,
       least(now(), t.st - interval '1 day' * (1 + s.g %% 30)),
       least(now(), t.st - interval '1 day' * (1 + s.g %% 30)),
       CASE WHEN s.g %% 33 = 0 THEN 2 ELSE 1 END,
       a.att,
       res_attendees_key(a.att),
       format('user%%s@example.com', lpad((s.o + 1)::text, 5, '0'))
FROM (SELECT g, 1 + g %% %(rooms)s AS room, g / %(rooms)s AS k,
             (g * 7919 + 13) %% %(users)s AS o, 1 + (g * 31) %% (%(users)s / 10 + 1) AS step
      FROM generate_series(%(lo)s::bigint, %(hi)s::bigint - 1) AS g) AS s
     JOIN rooms m ON m.id = s.room,
     LATERAL (SELECT (s.k * 731 + s.room * 37) %% 7300 AS slot) AS sl,
     LATERAL (SELECT to_timestamp(%(day0)s) - interval '365 days'
                     + interval '1 day' * (sl.slot / 10)
                     + interval '1 hour' * (8 + sl.slot %% 10) AS st) AS t,
     LATERAL (SELECT ARRAY(
                SELECT format('user%%s@example.com',
                              lpad(((s.o + i * s.step) %% %(users)s + 1)::text, 5, '0'))
                FROM generate_series(1, least(m.capacity - 1,
                       (ARRAY[4, 1, 6, 2, 2, 5, 3, 8])[1 + s.g %% 8])) AS i
                ORDER BY i) AS att) AS a;
