-- The room search's cost since migration 018 (bench/README.md#the-room-search-since-issue-15):
-- the search of every room (res_rooms_ranked) reads the active spans of all rooms within the
-- window widened by the largest buffer, ~7 times the rows of the window itself, and tested each
-- with res_in_the_way, which calls res_busy() twice per row: res_busy is IMMUTABLE (the
-- exclusion constraint's index needs it) while its body adds an interval to a timestamptz,
-- which is only STABLE, so the planner never inlines it and runs its SQL body per call.  At
-- 1,000,000 reservations a one-hour search spent 4-5 ms of its ~6 ms there.  The callers that
-- look at one room (res_conflicts, res_series_conflicts, the waitlist) keep res_in_the_way: its
-- two halves are answered there by two exact index scans, and res_busy runs only on the few
-- rows they return.

-- res_in_the_way (migration 018) for a scan of many rows, without res_busy: [rs, re + rb) meets
-- [start, end + gap), or [rs, re) meets [start - gap, end + gap), is
--   rs < end + gap AND (re + rb > start OR re > start - gap)
-- for the non-empty ranges both are: re > rs (a CHECK on reservations), end > start (every
-- caller checks it first), rb and gap_s >= 0 and not NULL (reservations.buffer_s; the room's
-- buffer from res_policy_buffer).  tests/integration/test_search_speed.py compares the two on
-- random spans and on every boundary.
CREATE FUNCTION res_in_the_way_scan(rs timestamptz, re timestamptz, rb integer, start_s bigint,
    end_s bigint, gap_s integer)
RETURNS boolean LANGUAGE sql STABLE
RETURN rs < to_timestamp(end_s + gap_s)
    AND (re + rb * interval '1 second' > to_timestamp(start_s)
        OR re > to_timestamp(start_s - gap_s));

-- Migration 018's res_rooms_ranked with the busy rooms read in two steps: the active spans of
-- every room in the window widened by the largest buffer (240 minutes: a reservation's own,
-- the CHECK on buffer_s, and a room's, room-service's bound), in one index-only scan of
-- reservations_active_range (every column read is in it), then each tested with its room's
-- buffer.  OFFSET 0 keeps the scan whole: with the room's buffer inside a range test the planner
-- probed reservations_active_span once per room instead (1,000 probes, ~30 ms).
CREATE OR REPLACE FUNCTION res_rooms_ranked(people int, need text[], bldg text, flr int, q text,
    start_s bigint, end_s bigint, except_res bigint, except_room bigint, known_only boolean,
    lim int, among bigint[], now_s bigint DEFAULT NULL)
RETURNS json LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT coalesce(json_agg(res_room_item(f.m, people, need)), '[]'::json) FROM (
        SELECT m FROM res_rooms_fitting(people, need, bldg, flr, q, except_room, known_only) m
        WHERE CASE WHEN among IS NULL THEN m.id NOT IN (
            SELECT r.room_id FROM (
                SELECT r.room_id, r.start_time, r.end_time, r.buffer_s FROM reservations r
                WHERE r.status IN ('confirmed', 'pending') AND r.id <> except_res
                AND tstzrange(r.start_time, r.end_time, '[)')
                    && tstzrange(to_timestamp(start_s - 14400), to_timestamp(end_s + 14400),
                        '[)')
                OFFSET 0) r
            JOIN rooms x ON x.id = r.room_id
            WHERE res_in_the_way_scan(r.start_time, r.end_time, r.buffer_s, start_s, end_s,
                res_policy_buffer(x)))
            ELSE m.id IN (SELECT unnest(among)) END
        AND (now_s IS NULL OR res_policy_slot(m, start_s, end_s, now_s) IS NULL)
        ORDER BY NOT m.details_known, m.capacity,
            cardinality(m.equipment_key) - cardinality(need), lower(m.name), m.id
        LIMIT lim) f);
END
$$;
