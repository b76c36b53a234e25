-- reservation_db: reservations number %(lo)s .. %(hi)s - 1 of the bench data set.
-- Reservation g belongs to room 1 + g %% rooms, is the k-th (k = g / rooms) of that room and takes
-- slot (k * 731 + room * 37) %% 7300 of the room's grid: 730 days from a year ago, 10 one-hour
-- slots a day from 08:00 UTC.  731 is prime to 7300, so one room's slots never repeat (k < 7300)
-- and never overlap; every room's first reservations already spread over the two years.
-- 1 in 33 is cancelled; a third last 30 minutes; the rest one hour.
INSERT INTO reservations (room_id, user_id, purpose, start_time, end_time, status, cancel_reason,
                          created_at, updated_at, version)
SELECT s.room,
       %(uid_lo)s + (s.g * 7919 + 13) %% %(users)s,
       (ARRAY['Team sync', '1:1', 'Sprint planning', 'Interview', 'Customer call', 'Retro',
              'Design review', 'Workshop'])[1 + s.g %% 8],
       t.st,
       t.st + CASE WHEN s.g %% 3 = 0 THEN interval '30 minutes' ELSE interval '1 hour' END,
       CASE WHEN s.g %% 33 = 0 THEN 'cancelled' ELSE 'confirmed' END,
       CASE WHEN s.g %% 33 = 0 THEN 'cancelled_by_user' END,
       least(now(), t.st - interval '1 day' * (1 + s.g %% 30)),
       least(now(), t.st - interval '1 day' * (1 + s.g %% 30)),
       CASE WHEN s.g %% 33 = 0 THEN 2 ELSE 1 END
FROM (SELECT g, 1 + g %% %(rooms)s AS room, g / %(rooms)s AS k
      FROM generate_series(%(lo)s::bigint, %(hi)s::bigint - 1) AS g) AS s,
     LATERAL (SELECT (k * 731 + room * 37) %% 7300 AS slot) AS sl,
     LATERAL (SELECT to_timestamp(%(day0)s) - interval '365 days'
                     + interval '1 day' * (sl.slot / 10)
                     + interval '1 hour' * (8 + sl.slot %% 10) AS st) AS t;
