-- Finding a room (docs/api.md#finding-a-room): GET /availability/rooms and the alternatives of
-- a 409.  The search is res_room_search(); the free windows nearest to a requested one are
-- res_nearest_windows(), shared by ?suggest= and by the alternatives of a refused booking
-- (res_conflict_alternatives), so the two never disagree about what "nearest" means.

-- Which rooms are busy in a span, whatever the room: the exclusion constraint's index leads with
-- room_id, so without a room it would be read whole.  The included columns make the scan an
-- index-only one (measured: a one-day span over 1,000 rooms and 1,000,000 reservations reads
-- ~25 index pages and no heap page, 0.3 ms).
CREATE INDEX reservations_confirmed_span ON reservations
    USING gist (tstzrange(start_time, end_time, '[)')) INCLUDE (room_id, id, start_time, end_time)
    WHERE status = 'confirmed';

-- Unix seconds as the API writes times.
CREATE FUNCTION res_utc_text(s bigint) RETURNS text LANGUAGE sql STABLE
RETURN to_char(to_timestamp(s) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"');

-- The items of equipment a room has beyond need (lower-cased), in the room's order and spelling.
CREATE FUNCTION res_extra_equipment(items text[], need text[]) RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
SELECT coalesce(array_agg(e ORDER BY o), '{}') FROM unnest(items) WITH ORDINALITY AS u (e, o)
WHERE lower(e) <> ALL (need)
$$;

-- One entry of a search's answer: {room: {...}, fits: {spare_seats, extra_equipment,
-- details_known}} for people people needing need (lower-cased items).
CREATE FUNCTION res_room_item(m rooms, people int, need text[]) RETURNS json
LANGUAGE sql STABLE AS $$
SELECT json_build_object(
    'room', json_build_object('id', m.id, 'name', m.name, 'capacity', m.capacity,
        'equipment', m.equipment, 'building', m.building, 'floor', m.floor,
        'time_zone', m.time_zone, 'active', m.active),
    'fits', json_build_object('spare_seats', m.capacity - people,
        'extra_equipment', res_extra_equipment(m.equipment, need),
        'details_known', m.details_known))
$$;

-- The rooms that fit a need whatever their bookings: active, not deleted, capacity >= people,
-- the name containing q (case-insensitive, literally) when given, and either known to have all
-- of need (lower-cased items) in building (case-insensitive) on floor when given, or, unless
-- known_only, with details not known yet (listed, marked, never silently missing: the copy of
-- the room predates migration 003).  except_room is left out (0: none).  Inlined by the planner.
CREATE FUNCTION res_rooms_fitting(people int, need text[], bldg text, flr int, q text,
    except_room bigint, known_only boolean)
RETURNS SETOF rooms LANGUAGE sql STABLE AS $$
SELECT m.* FROM rooms m
WHERE m.active AND NOT m.deleted AND m.capacity >= people AND m.id <> except_room
AND ((m.details_known AND m.equipment_key @> need
      AND (bldg IS NULL OR lower(m.building) = lower(bldg))
      AND (flr IS NULL OR m.floor = flr))
     OR (NOT m.details_known AND NOT known_only))
AND (q IS NULL OR m.name ILIKE
     '%' || replace(replace(replace(q, '\', '\\'), '%', '\%'), '_', '\_') || '%')
$$;

-- The fitting rooms (res_rooms_fitting) free for all of [start_s, end_s) (no confirmed
-- reservation overlaps it but except_res; 0: none; or, when among is not NULL, those of among,
-- known to be free by the caller), best fit first: rooms with known details,
-- then smallest sufficient capacity, fewest extra equipment, name, id; then the rooms whose
-- details are unknown by capacity, name, id.  need holds distinct items, so a room that has
-- them all has cardinality(equipment_key) - cardinality(need) extra ones (room-service keeps a
-- room's items distinct regardless of case).  At most lim, as a JSON array of res_room_item.
-- The busy rooms come from one index-only scan of reservations_confirmed_span, hashed.
CREATE FUNCTION res_rooms_ranked(people int, need text[], bldg text, flr int, q text,
    start_s bigint, end_s bigint, except_res bigint, except_room bigint, known_only boolean,
    lim int, among bigint[])
RETURNS json LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT coalesce(json_agg(res_room_item(f.m, people, need)), '[]'::json) FROM (
        SELECT m FROM res_rooms_fitting(people, need, bldg, flr, q, except_room, known_only) m
        WHERE CASE WHEN among IS NULL THEN m.id NOT IN (
            SELECT r.room_id FROM reservations r
            WHERE r.status = 'confirmed' AND r.id <> except_res
            AND tstzrange(r.start_time, r.end_time, '[)')
                && tstzrange(to_timestamp(start_s), to_timestamp(end_s), '[)'))
            ELSE m.id IN (SELECT unnest(among)) END
        ORDER BY NOT m.details_known, m.capacity,
            cardinality(m.equipment_key) - cardinality(need), lower(m.name), m.id
        LIMIT lim) f);
END
$$;

-- The free windows [s, s + len) nearest to the one starting at start_s in which at least one of
-- the rooms ids (distinct) is free (the reservation except_res aside; 0: none): within the day
-- [day_s, day_e), starting after after_s and at most at until_s, never start_s itself; nearest
-- first (by |s - start_s|, the earlier on a tie), at most n.  The starts tried are the day's
-- first and last possible ones, the next whole minute after after_s, and, for every confirmed
-- reservation of those rooms in the day, its end and its start - len: the nearest free window
-- of a room always starts at one of these.  Shared by ?suggest= and by the alternatives of a 409.
--
-- Each window comes with free: the rooms of ids free for it.
--
-- Linear in the day's reservations of those rooms (sorts aside): each room's free gaps of the
-- day are computed once (lead() over its busy intervals, clipped to the day), each gap at
-- least len long gives the span of starts [gap start, gap end - len] free in that room, and
-- one ordered pass over those spans and the starts tried tells for each start whether a span
-- reaches it (the running maximum of the span ends begun at or before it).  The rooms of the
-- (at most n) windows found are those with a gap holding the window.
CREATE FUNCTION res_nearest_windows(ids bigint[], start_s bigint, len bigint, day_s bigint,
    day_e bigint, after_s bigint, until_s bigint, except_res bigint, n int)
RETURNS TABLE (s bigint, e bigint, free bigint[]) LANGUAGE plpgsql STABLE AS $$
BEGIN
-- PL/pgSQL for its plan cache: planning this statement costs more than running it.
RETURN QUERY
-- busy: two branches, one of them cut by its one-time filter on cardinality(ids) (the plan is
-- generic).  Up to 16 rooms (a 409's alternatives: one), the exclusion constraint's index
-- probed per room; the day's span of every room (reservations_confirmed_span) read ~1,500
-- entries for one room: 0.71 against 0.03 ms (1 M reservations); 0.46 against 0.37 ms at 16,
-- the span cheaper from ~24 rooms on.
WITH busy AS MATERIALIZED (
    SELECT r.room_id, extract(epoch FROM r.start_time)::bigint AS bs,
        extract(epoch FROM r.end_time)::bigint AS be
    FROM reservations r
    WHERE cardinality(ids) <= 16 AND r.status = 'confirmed' AND r.room_id = ANY (ids)
    AND r.id <> except_res
    AND tstzrange(r.start_time, r.end_time, '[)')
        && tstzrange(to_timestamp(day_s), to_timestamp(day_e), '[)')
    UNION ALL
    SELECT r.room_id, extract(epoch FROM r.start_time)::bigint,
        extract(epoch FROM r.end_time)::bigint
    FROM reservations r
    -- room_id + 0: the day's span through reservations_confirmed_span, then the rooms; as an
    -- index condition, = ANY of hundreds of rooms probes the exclusion index once per room
    -- (measured 130 ms for 950 rooms, against 1 ms this way).  A hashed IN, not = ANY, which
    -- would compare each row with every room.
    WHERE cardinality(ids) > 16 AND r.status = 'confirmed'
    AND r.room_id + 0 IN (SELECT unnest(ids)) AND r.id <> except_res
    AND tstzrange(r.start_time, r.end_time, '[)')
        && tstzrange(to_timestamp(day_s), to_timestamp(day_e), '[)')),
-- Each room's free gaps [gs, ge) of the day at least len long: before its first reservation,
-- between two (a room's confirmed reservations never overlap), after its last, and the whole
-- day for a room without any.
gaps AS MATERIALIZED (
    SELECT g.room_id, greatest(g.gs, day_s) AS gs, least(g.ge, day_e) AS ge FROM (
        SELECT b.room_id, b.be AS gs,
            coalesce(lead(b.bs) OVER (PARTITION BY b.room_id ORDER BY b.bs), day_e) AS ge
        FROM busy b
        UNION ALL
        SELECT b.room_id, day_s, min(b.bs) FROM busy b GROUP BY b.room_id
        UNION ALL
        SELECT i, day_s, day_e FROM unnest(ids) AS i WHERE i NOT IN (SELECT room_id FROM busy)
    ) g
    WHERE least(g.ge, day_e) - greatest(g.gs, day_s) >= len),
-- The starts free in some room, as spans [p, hi], and the starts tried (hi NULL).
points AS (
    SELECT g.gs AS p, g.ge - len AS hi FROM gaps g
    UNION ALL
    SELECT c, NULL FROM (SELECT day_s UNION ALL SELECT day_e - len
        UNION ALL SELECT (after_s / 60 + 1) * 60
        UNION ALL SELECT be FROM busy UNION ALL SELECT bs - len FROM busy) AS x (c)
    WHERE c >= day_s AND c + len <= day_e AND c > after_s AND c <= until_s AND c <> start_s),
-- At equal positions the spans come first (NULLS LAST), so a span beginning at a start counts.
reach AS (
    SELECT pt.p, pt.hi, max(pt.hi) OVER (ORDER BY pt.p, pt.hi NULLS LAST
        ROWS UNBOUNDED PRECEDING) AS upto
    FROM points pt),
found AS (
    SELECT DISTINCT ON (abs(t.p - start_s), t.p) t.p FROM reach t
    WHERE t.hi IS NULL AND t.upto >= t.p
    ORDER BY abs(t.p - start_s), t.p
    LIMIT n)
SELECT f.p, f.p + len, ARRAY(SELECT g.room_id FROM gaps g WHERE g.gs <= f.p AND g.ge >= f.p + len)
FROM found f ORDER BY abs(f.p - start_s), f.p;
END
$$;

-- The day (local to zone) in which the instant s falls, as [start, end) in Unix seconds: 23 or
-- 25 hours long on the days of a DST change.
CREATE FUNCTION res_local_day(s bigint, zone text, OUT day_s bigint, OUT day_e bigint)
LANGUAGE sql STABLE AS $$
SELECT extract(epoch FROM d AT TIME ZONE zone)::bigint,
    extract(epoch FROM (d + interval '1 day') AT TIME ZONE zone)::bigint
FROM (SELECT date_trunc('day', to_timestamp(s) AT TIME ZONE zone) AS d) x
$$;

-- GET /availability/rooms in one call.  The times are Unix seconds, or (when the client wrote no
-- offset) wall-clock times in zone.  problem: 'end' (end not after start) or 'duration' (longer
-- than max_s); otherwise body is the answer: the ranked rooms (res_rooms_ranked, at most lim);
-- with suggest > 0 {rooms, alternatives}, where alternatives holds, when fewer than suggest
-- rooms fit (counted beyond lim), up to suggest nearest windows of the same length in the local day (of
-- zone) of the start, after now_s, in which a room that fits is free, each with its rooms.
CREATE FUNCTION res_room_search(people int, equipment json, bldg text, flr int, q text,
    start_s bigint, start_local timestamp, end_s bigint, end_local timestamp, zone text,
    lim int, suggest int, now_s bigint, max_s bigint, OUT problem text, OUT body json)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    need text[] := ARRAY(SELECT DISTINCT lower(e) FROM json_array_elements_text(equipment) AS e);
    fitting int;
    day record;
BEGIN
    start_s := coalesce(start_s, extract(epoch FROM start_local AT TIME ZONE zone)::bigint);
    end_s := coalesce(end_s, extract(epoch FROM end_local AT TIME ZONE zone)::bigint);
    IF end_s <= start_s THEN
        problem := 'end';
        RETURN;
    ELSIF end_s - start_s > max_s THEN
        problem := 'duration';
        RETURN;
    END IF;
    -- At least suggest rooms, to tell whether that many fit, whatever lim.
    body := res_rooms_ranked(people, need, bldg, flr, q, start_s, end_s, 0, 0, false,
        greatest(lim, suggest), NULL);
    IF suggest = 0 THEN
        RETURN;
    END IF;
    fitting := json_array_length(body);
    IF fitting > lim THEN
        body := (SELECT json_agg(e ORDER BY i) FROM json_array_elements(body)
            WITH ORDINALITY AS x (e, i) WHERE i <= lim);
    END IF;
    SELECT * INTO day FROM res_local_day(start_s, zone);
    body := json_build_object('rooms', body, 'alternatives', CASE
        WHEN fitting >= suggest THEN '[]'::json
        ELSE (SELECT coalesce(json_agg(json_build_object('start_time', res_utc_text(w.s),
                'end_time', res_utc_text(w.e),
                'rooms', res_rooms_ranked(people, need, bldg, flr, q, w.s, w.e, 0, 0, false,
                    lim, w.free))), '[]'::json)
            FROM res_nearest_windows(ARRAY(SELECT f.id FROM res_rooms_fitting(people, need,
                    bldg, flr, q, 0, false) f), start_s, end_s - start_s, day.day_s,
                day.day_e, now_s, 9223372036854775807, 0, suggest) w)
        END);
END
$$;

-- details.alternatives of a 409 from res_book (res = 0, room given) or res_change (res the
-- reservation; room and times NULL where the body keeps them): {times: up to 3 nearest free
-- windows of the same length in the same room (res_nearest_windows: the room's local day, after
-- now_s and within horizon_s of it), rooms: up to 3 other active rooms with known details, of
-- at least the room's capacity and with all its equipment, free for the requested window, best
-- fit first}.  VOLATILE: called after the booking function in the same transaction
-- (res_book_answer, res_change_answer), it reads with a new snapshot what that function saw
-- once it held the room's lock.  Never a hold.
CREATE FUNCTION res_conflict_alternatives(res bigint, room bigint, start_s bigint,
    start_local timestamp, end_s bigint, end_local timestamp, now_s bigint, horizon_s bigint)
RETURNS json LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    cur reservations;
    m rooms;
    day record;
BEGIN
    SELECT * INTO cur FROM reservations r WHERE r.id = res;
    SELECT * INTO m FROM rooms WHERE rooms.id = coalesce(room, cur.room_id);
    start_s := coalesce(start_s, extract(epoch FROM start_local AT TIME ZONE m.time_zone)::bigint,
        extract(epoch FROM cur.start_time)::bigint);
    end_s := coalesce(end_s, extract(epoch FROM end_local AT TIME ZONE m.time_zone)::bigint,
        extract(epoch FROM cur.end_time)::bigint);
    SELECT * INTO day FROM res_local_day(start_s, m.time_zone);
    RETURN json_build_object(
        'times', (SELECT coalesce(json_agg(json_build_object('start_time', res_utc_text(w.s),
                'end_time', res_utc_text(w.e))), '[]'::json)
            FROM res_nearest_windows(ARRAY[m.id], start_s, end_s - start_s, day.day_s,
                day.day_e, now_s, now_s + horizon_s, coalesce(res, 0), 3) w),
        'rooms', res_rooms_ranked(m.capacity, m.equipment_key, NULL, NULL, NULL, start_s, end_s,
            coalesce(res, 0), m.id, true, 3, NULL));
END
$$;

-- res_book() and res_change() as repo.c calls them, with the alternatives of a conflict
-- (res_conflict_alternatives; NULL for any other outcome) computed without holding the room's
-- lock, in the same transaction.  The booking function runs in a subtransaction (the block with
-- an EXCEPTION clause); a conflict is raised out of it (SQLSTATE RS409, a code of this file's
-- own), which rolls the subtransaction back and so releases the row locks it took (the writers
-- waiting on them go on at once) before the alternatives are computed.  A refused booking
-- leaves nothing behind anyway, so the rollback undoes nothing else; plpgsql variables
-- (outcome, body) are not rolled back.  Any other error (serialization_failure, an exclusion
-- violation) passes through as before.
CREATE FUNCTION res_book_answer(room bigint, user_id bigint, purpose text,
    start_s bigint, start_local timestamp, end_s bigint, end_local timestamp,
    issued_ms bigint, topic text, idem_key text, idem_hash text,
    now_s bigint, min_s bigint, max_s bigint, horizon_s bigint,
    OUT outcome text, OUT body text, OUT alternatives text)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    BEGIN
        SELECT * INTO outcome, body FROM res_book(room, user_id, purpose, start_s, start_local,
            end_s, end_local, issued_ms, topic, idem_key, idem_hash, now_s, min_s, max_s,
            horizon_s);
        IF outcome = 'conflict' THEN
            RAISE SQLSTATE 'RS409';
        END IF;
    EXCEPTION WHEN SQLSTATE 'RS409' THEN
        alternatives := res_conflict_alternatives(0, room, start_s, start_local, end_s,
            end_local, now_s, horizon_s)::text;
    END;
END
$$;

CREATE FUNCTION res_change_answer(id bigint, caller bigint, admin boolean, room bigint,
    purpose text, start_s bigint, start_local timestamp, end_s bigint, end_local timestamp,
    moved boolean, if_match bigint, topic text, now_s bigint, min_s bigint, max_s bigint,
    horizon_s bigint, OUT outcome text, OUT body text, OUT alternatives text)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    BEGIN
        SELECT * INTO outcome, body FROM res_change(id, caller, admin, room, purpose, start_s,
            start_local, end_s, end_local, moved, if_match, topic, now_s, min_s, max_s,
            horizon_s);
        IF outcome = 'conflict' THEN
            RAISE SQLSTATE 'RS409';
        END IF;
    EXCEPTION WHEN SQLSTATE 'RS409' THEN
        alternatives := res_conflict_alternatives(id, room, start_s, start_local, end_s,
            end_local, now_s, horizon_s)::text;
    END;
END
$$;
