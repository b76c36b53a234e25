-- The utilisation report (docs/api.md#utilisation-report, issue 15 P5): GET /reports/utilisation
-- answers with one call of res_utilisation(), one aggregate statement over the rooms' copy and
-- the reservations of the window: the confirmed ones overlapping it through the GiST index of
-- active spans (018), the others starting in it through reservations_unconfirmed_start (at the
-- end).  Both functions are LANGUAGE sql, STABLE, without STRICT or SET, so that the planner
-- inlines them into the calling statement (EXPLAIN shows the whole plan, and a custom plan sees
-- group_by as a constant).  The planner's default row estimates of their set-returning
-- functions cost the statement far above its work: reservation-service runs it with JIT off
-- (reservation-service/src/repo_report.c).  Measured at 1,000 rooms and 1 M reservations
-- (bench/README.md#targets-issue-15-utilisation-report).

-- The time [a, b) as pieces, in seconds: one piece with how NULL when by_hour is false (then
-- nothing more is computed); otherwise cut at the local whole hours of zone, each piece with
-- its local hour of the week how (0 = Monday 00:00-01:00, 167 = Sunday 23:00-24:00), read at
-- the piece's start instant.  Wall clock, DST included: the repeated hour of a fall-back day
-- goes twice into its hour, the skipped hour of a spring day gets nothing.  The cuts follow the
-- zone's offset at a; an offset change by a fraction of an hour inside [a, b)
-- (Australia/Lord_Howe's 30 minutes) leaves the pieces after it shifted by that fraction.
-- Float seconds (date_part) rather than numeric (extract): the report cuts tens of thousands of
-- reservations, and the timestamps are whole microseconds.
CREATE FUNCTION res_time_pieces(zone text, a timestamptz, b timestamptz, by_hour boolean)
RETURNS TABLE (how integer, secs double precision) LANGUAGE sql STABLE AS $$
SELECT NULL::integer, date_part('epoch', b) - date_part('epoch', a)
WHERE NOT by_hour AND a < b
UNION ALL
SELECT ((date_part('isodow', l.l) - 1) * 24 + date_part('hour', l.l))::integer,
    date_part('epoch', least(b, p.s + interval '1 hour')) - date_part('epoch', greatest(a, p.s))
FROM (SELECT z.l0, z.h0, generate_series(0, ceil((date_part('epoch', b)
            - date_part('epoch', z.h0)) / 3600)::integer - 1) AS k
      FROM (SELECT y.l0, a - (y.l0 - date_trunc('hour', y.l0)) AS h0
            FROM (SELECT a AT TIME ZONE zone AS l0) y) z
      WHERE by_hour AND a < b) q
CROSS JOIN LATERAL (SELECT q.h0 + q.k * interval '1 hour' AS s) p
CROSS JOIN LATERAL (SELECT CASE WHEN q.k = 0 THEN q.l0 ELSE p.s AT TIME ZONE zone END AS l) l
$$;

-- The report: one row per group of group_by ('room', 'building' or 'hour_of_week') and a last
-- row with total true for all of them.  The window: [from_s, to_s) (Unix seconds), or the local
-- days [from_d, to_d) of each room's time zone (one of each pair is NULL).  Rooms: active, not
-- deleted, in building only_building ignoring case (NULL: all).  Per group:
-- - available: each room's opening hours (policies.opening_hours: per local weekday, intervals
--   in its zone; a day absent or null is open all day, [] closed; no opening_hours: all day)
--   within the window, wall clock (a day is 23 or 25 hours on DST changes).  Rooms sharing a
--   zone and opening hours share the computation (a handful of schedules, not a row per room
--   and day).
-- - booked: confirmed reservations (checked in or not) clipped to the window; pending ones do not
--   count (not approved), nor do cancelled ones (released no-shows included).
-- - bookings: reservations starting in the window, confirmed or cancelled, except those rejected
--   (never approved) and those still pending; cancellations: those of them cancelled by people
--   (cancelled_by_user, cancelled_by_admin, series_changed: an occurrence dropped by a change of
--   its series); no_shows: those released by the releaser (no_show); checked_in: those checked
--   in; lead time: start_time - created_at of the bookings.
-- For hour_of_week, time is cut at the room's local hours (res_time_pieces) and a booking's counts
-- go to the local hour it starts in.
CREATE FUNCTION res_utilisation(from_s bigint, from_d date, to_s bigint, to_d date,
    only_building text, group_by text)
RETURNS TABLE (total boolean, room_id bigint, room_name text, building text, time_zone text,
    weekday text, hour integer, rooms bigint, available_hours numeric, booked_hours numeric,
    occupancy_pct numeric, bookings bigint, cancellations bigint, cancellation_rate numeric,
    no_show_count bigint, checked_in_count bigint, no_show_rate numeric,
    median_lead_time_hours numeric)
LANGUAGE sql STABLE AS $$
WITH m AS MATERIALIZED (
    SELECT m.id, m.name, m.building, m.time_zone, o.oh,
        m.time_zone || ' ' || coalesce(o.oh::text, 'null') AS sched,
        CASE group_by WHEN 'room' THEN 'r' || m.id
            WHEN 'building' THEN coalesce('b' || m.building, 'n') END AS k,
        coalesce(to_timestamp(from_s), from_d::timestamp AT TIME ZONE m.time_zone) AS f,
        coalesce(to_timestamp(to_s), to_d::timestamp AT TIME ZONE m.time_zone) AS t
    FROM rooms m
    CROSS JOIN LATERAL (SELECT CASE WHEN jsonb_typeof(m.policies->'opening_hours') = 'object'
        THEN m.policies->'opening_hours' END AS oh) o
    WHERE m.active AND NOT m.deleted
    AND (only_building IS NULL OR lower(m.building) = lower(only_building))
),
-- The available time of each schedule (zone, opening hours): its local days' intervals.
sa AS (
    SELECT s.sched, h.how, sum(h.secs) AS secs
    FROM (SELECT DISTINCT ON (sched) sched, time_zone, oh, f, t FROM m) s
    CROSS JOIN LATERAL generate_series((s.f AT TIME ZONE s.time_zone)::date::timestamp,
        ((s.t AT TIME ZONE s.time_zone) - interval '1 microsecond')::date::timestamp,
        interval '1 day') AS d
    CROSS JOIN LATERAL (SELECT s.oh->(ARRAY['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'])
        [extract(isodow FROM d)::integer] AS hours) x
    CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof(x.hours) = 'array'
        THEN x.hours ELSE '[["00:00", "24:00"]]'::jsonb END) AS i
    CROSS JOIN LATERAL res_time_pieces(s.time_zone,
        greatest(s.f, (d + (i->>0)::interval) AT TIME ZONE s.time_zone),
        least(s.t, (d + (i->>1)::interval) AT TIME ZONE s.time_zone),
        group_by = 'hour_of_week') AS h
    GROUP BY 1, 2
),
av AS (
    SELECT CASE WHEN group_by = 'hour_of_week' THEN sa.how::text ELSE rc.k END AS k,
        rc.n * sa.secs AS secs
    FROM (SELECT k, sched, count(*) AS n FROM m GROUP BY 1, 2) rc
    JOIN sa ON sa.sched = rc.sched
),
w AS (SELECT min(f) AS f, max(t) AS t FROM m),
-- The reservations that matter: confirmed ones overlapping the window (booked time; a GiST
-- index of spans, 005 or 018), and the others starting in it (counts; the partial index below).
x AS (
    SELECT r.room_id, r.start_time, r.end_time, r.status, r.cancel_reason, r.created_at,
        r.checked_in_at
    FROM w JOIN reservations r ON r.status = 'confirmed'
        AND tstzrange(r.start_time, r.end_time, '[)') && tstzrange(w.f, w.t, '[)')
    UNION ALL
    SELECT r.room_id, r.start_time, r.end_time, r.status, r.cancel_reason, r.created_at,
        r.checked_in_at
    FROM w JOIN reservations r ON r.status <> 'confirmed'
        AND r.start_time >= w.f AND r.start_time < w.t
),
-- The reservations with their room's group and window, and (grouped by hours only) their
-- local start: one zone conversion per reservation, shared by the booked time and the counts.
xm AS (
    SELECT x.start_time, x.end_time, x.status, x.cancel_reason, x.created_at,
        x.checked_in_at, m.k, m.f, m.t, m.time_zone,
        CASE WHEN group_by = 'hour_of_week' THEN x.start_time AT TIME ZONE m.time_zone END AS l
    FROM x JOIN m ON m.id = x.room_id
),
-- Booked time, in pieces.  A booking that lies within one local hour (most of them), or any
-- booking when the groups are no hours, is one piece computed in place; the others are cut by
-- res_time_pieces (a lateral set-returning call per row cost more than the rest of the report:
-- 0.2 of 0.45 s measured).
bp AS (
    SELECT xm.k, xm.time_zone, p.ps, p.pe, l.l0,
        group_by <> 'hour_of_week'
            OR (l.l0 - date_trunc('hour', l.l0)) + (p.pe - p.ps) <= interval '1 hour' AS one
    FROM xm
    CROSS JOIN LATERAL (SELECT greatest(xm.start_time, xm.f) AS ps,
        least(xm.end_time, xm.t) AS pe) p
    CROSS JOIN LATERAL (SELECT CASE WHEN group_by <> 'hour_of_week' THEN NULL
        WHEN p.ps = xm.start_time THEN xm.l ELSE p.ps AT TIME ZONE xm.time_zone END AS l0) l
    WHERE xm.status = 'confirmed' AND p.ps < p.pe
),
b AS (
    SELECT CASE WHEN group_by = 'hour_of_week'
            THEN ((date_part('isodow', bp.l0) - 1) * 24 + date_part('hour', bp.l0))::integer::text
            ELSE bp.k END AS k,
        date_part('epoch', bp.pe) - date_part('epoch', bp.ps) AS secs
    FROM bp WHERE bp.one
    UNION ALL
    SELECT h.how::text, h.secs
    FROM bp CROSS JOIN LATERAL res_time_pieces(bp.time_zone, bp.ps, bp.pe, true) AS h
    WHERE NOT bp.one
),
-- The bookings: starting in the window, neither pending nor rejected.
c AS (
    SELECT CASE WHEN group_by = 'hour_of_week'
            THEN ((date_part('isodow', xm.l) - 1) * 24 + date_part('hour', xm.l))::integer::text
            ELSE xm.k END AS k,
        xm.cancel_reason, xm.checked_in_at, date_part('epoch', xm.start_time - xm.created_at) AS lead
    FROM xm
    WHERE xm.start_time >= xm.f AND xm.start_time < xm.t AND xm.status <> 'pending'
    AND xm.cancel_reason IS DISTINCT FROM 'rejected'
),
-- The medians need their group's values sorted: an aggregate of their own, over the bookings
-- alone (the sums below hash).
lt AS (
    SELECT CASE WHEN grouping(c.k) = 1 THEN 'total' ELSE c.k END AS k,
        percentile_cont(0.5) WITHIN GROUP (ORDER BY c.lead) AS lead
    FROM c GROUP BY GROUPING SETS ((c.k), ())
),
-- Every group of the answer (also those without any time or booking) with its rooms.
keys AS (
    SELECT m.k, count(*) AS rooms, min(m.id) AS id, min(m.name) AS name,
        min(m.building) AS building, min(m.time_zone) AS time_zone
    FROM m WHERE group_by <> 'hour_of_week' GROUP BY m.k
    UNION ALL
    SELECT how::text, (SELECT count(*) FROM m), NULL, NULL, NULL, NULL
    FROM generate_series(0, 167) AS how WHERE group_by = 'hour_of_week'
),
-- One row per group: the keys, and the sums of every kind of row.  No joins: the groups are
-- summed together (a join on estimates of a few hundred rows chose nested loops).
u AS (
    SELECT k, true AS key, rooms, id, name, building, time_zone,
        NULL::double precision AS avail, NULL::double precision AS booked, 0 AS bookings, 0 AS cancellations, 0 AS no_shows,
        0 AS checked_in, NULL::double precision AS lead
    FROM keys
    UNION ALL
    SELECT k, false, 0, NULL, NULL, NULL, NULL, secs, NULL, 0, 0, 0, 0, NULL FROM av
    UNION ALL
    SELECT k, false, 0, NULL, NULL, NULL, NULL, NULL, secs, 0, 0, 0, 0, NULL FROM b
    UNION ALL
    SELECT k, false, 0, NULL, NULL, NULL, NULL, NULL, NULL, 1,
        (cancel_reason IN ('cancelled_by_user', 'cancelled_by_admin', 'series_changed'))::int,
        (cancel_reason IS NOT DISTINCT FROM 'no_show')::int,
        (checked_in_at IS NOT NULL)::int, NULL
    FROM c
    UNION ALL
    SELECT k, false, 0, NULL, NULL, NULL, NULL, NULL, NULL, 0, 0, 0, 0, lead FROM lt
),
g AS (
    SELECT CASE WHEN grouping(u.k) = 1 THEN 'total' ELSE u.k END AS k,
        coalesce(sum(u.rooms), 0) AS rooms, min(u.id) AS id, min(u.name) AS name,
        min(u.building) AS building, min(u.time_zone) AS time_zone,
        coalesce(sum(u.avail), 0) AS avail, coalesce(sum(u.booked), 0) AS booked,
        coalesce(sum(u.bookings), 0) AS bookings,
        coalesce(sum(u.cancellations), 0) AS cancellations,
        coalesce(sum(u.no_shows), 0) AS no_shows, coalesce(sum(u.checked_in), 0) AS checked_in,
        max(u.lead) AS lead, -- the totals' median: lt's row 'total' (below)
        bool_or(u.key) AS key
    FROM u WHERE u.k <> 'total'
    GROUP BY GROUPING SETS ((u.k), ())
)
SELECT g.k = 'total',
    CASE WHEN group_by = 'room' AND g.k <> 'total' THEN g.id END,
    CASE WHEN group_by = 'room' AND g.k <> 'total' THEN g.name END,
    CASE WHEN group_by IN ('room', 'building') AND g.k <> 'total' THEN g.building END,
    CASE WHEN group_by = 'room' AND g.k <> 'total' THEN g.time_zone END,
    CASE WHEN group_by = 'hour_of_week' AND g.k <> 'total'
        THEN (ARRAY['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'])[g.k::integer / 24 + 1] END,
    CASE WHEN group_by = 'hour_of_week' AND g.k <> 'total' THEN g.k::integer % 24 END,
    CASE WHEN g.k = 'total' AND group_by = 'hour_of_week' THEN (SELECT count(*) FROM m)
        ELSE g.rooms END,
    trim_scale(round(g.avail::numeric / 3600, 2)),
    trim_scale(round(g.booked::numeric / 3600, 2)),
    CASE WHEN g.avail > 0 THEN trim_scale(round((100 * g.booked / g.avail)::numeric, 2)) END,
    g.bookings, g.cancellations,
    CASE WHEN g.bookings > 0
        THEN trim_scale(round(g.cancellations::numeric / g.bookings, 4)) END,
    g.no_shows, g.checked_in,
    CASE WHEN g.no_shows + g.checked_in > 0
        THEN trim_scale(round(g.no_shows::numeric / (g.no_shows + g.checked_in), 4)) END,
    trim_scale(round((CASE WHEN g.k = 'total' THEN (SELECT lead FROM lt WHERE k = 'total')
        ELSE g.lead END / 3600)::numeric, 2))
FROM g
WHERE g.key OR g.k = 'total'
ORDER BY g.k = 'total', g.building IS NULL, g.building, g.name, g.id,
    CASE WHEN g.k <> 'total' AND group_by = 'hour_of_week' THEN g.k::integer END
$$;

-- The reservations that are not confirmed (cancelled, pending: a few per cent), by start: the
-- report's counts read them without visiting the confirmed majority.
CREATE INDEX reservations_unconfirmed_start ON reservations (start_time)
    WHERE status <> 'confirmed';
