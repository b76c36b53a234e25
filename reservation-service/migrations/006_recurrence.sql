-- Recurring reservations (docs/api.md#recurring-reservations): a series and its occurrences,
-- which are ordinary reservations carrying series_id and their original local start.  The C
-- side (reservation-service/src/series.c) parses the rule and expands it into local starts
-- (common/src/rrule.c); this file turns them into instants in the room's zone, checks them and
-- books them in one statement (res_book_series), as res_book does for one reservation.
--
-- Lock order.  Every writer that touches a series and its occurrences takes its locks in one
-- order, so that no two of them can wait on each other: the rooms it locks (FOR NO KEY UPDATE,
-- in id order; a room deletion's upsert of its room row counts), then the series (FOR UPDATE, in
-- id order), then the occurrences (the rows it updates).  Single bookings already lock the room
-- before the reservation; res_book_series, res_cancel_series, res_cancel_future, and
-- res_change_series / res_cancel_following (007_series_edit.sql) follow it.  Dates cross to the
-- C side only through to_char, whatever the session's DateStyle.

CREATE TABLE reservation_series (
    id            bigserial PRIMARY KEY,
    room_id       bigint NOT NULL REFERENCES rooms (id),
    user_id       bigint NOT NULL,
    purpose       text NOT NULL DEFAULT '' CHECK (length(purpose) <= 200),
    recurrence    json NOT NULL,       -- the rule as the client gave it (string or object;
                                       -- json, not jsonb: the object's key order is kept)
    rrule         text NOT NULL,       -- canonical RRULE text (rrule_format), no EXDATE
    exdates       date[] NOT NULL DEFAULT '{}',  -- the rule's EXDATEs (local dates)
    time_zone     text NOT NULL,       -- the room's zone at creation; occurrences follow it
    first_start   timestamp NOT NULL,  -- local start of the rule's first date (DTSTART)
    duration_s    integer NOT NULL CHECK (duration_s > 0),
    until_time    timestamptz,         -- set when cut by scope=this_and_following
    parent_id     bigint REFERENCES reservation_series (id),  -- the series it was split from
    status        text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'cancelled')),
    cancel_reason text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    version       integer NOT NULL DEFAULT 1
);
-- Room and user deletions look up the series they end.
CREATE INDEX reservation_series_room ON reservation_series (room_id) WHERE status = 'active';
CREATE INDEX reservation_series_user ON reservation_series (user_id) WHERE status = 'active';

ALTER TABLE reservations
    ADD COLUMN series_id bigint REFERENCES reservation_series (id),
    ADD COLUMN occurrence_start timestamp,      -- the original local start (RECURRENCE-ID)
    ADD COLUMN exception boolean NOT NULL DEFAULT false;  -- changed on its own (PUT on it)
CREATE INDEX reservations_series ON reservations (series_id, occurrence_start)
    WHERE series_id IS NOT NULL;

-- A local timestamp as the API writes it ("2026-12-01T10:00:00", no offset).
CREATE FUNCTION res_local_text(t timestamp) RETURNS text LANGUAGE sql IMMUTABLE
RETURN to_char(t, 'YYYY-MM-DD"T"HH24:MI:SS');

-- res_json of migration 002 with the series fields; res_write_columns in
-- reservation-service/src/repo.c writes the same keys in the same order for the reads.
CREATE OR REPLACE FUNCTION res_json(r reservations) RETURNS json LANGUAGE sql STABLE AS $$
SELECT json_build_object('id', r.id, 'room_id', r.room_id, 'user_id', r.user_id,
    'purpose', r.purpose,
    'start_time', to_char(r.start_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
    'end_time', to_char(r.end_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
    'status', r.status, 'cancel_reason', r.cancel_reason,
    'created_at', to_char(r.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'updated_at', to_char(r.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'version', r.version, 'series_id', r.series_id,
    'occurrence_start', res_local_text(r.occurrence_start))
$$;

-- A series as the API answers it and as its events carry it, without its occurrences.
CREATE FUNCTION res_series_json(s reservation_series) RETURNS json LANGUAGE sql STABLE AS $$
SELECT json_build_object('id', s.id, 'room_id', s.room_id, 'user_id', s.user_id,
    'purpose', s.purpose, 'recurrence', s.recurrence, 'rrule', s.rrule,
    'exdates', to_json(s.exdates), 'time_zone', s.time_zone,
    'first_start', res_local_text(s.first_start), 'duration_seconds', s.duration_s,
    'until_time', to_char(s.until_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
    'parent_id', s.parent_id, 'status', s.status, 'cancel_reason', s.cancel_reason,
    'version', s.version,
    'created_at', to_char(s.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'updated_at', to_char(s.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
$$;

-- The series object of GET /reservations/series/{id}, and of a create with skipped (the
-- occurrences skipped for their conflicts; NULL leaves the key out): res_series_json with
-- occurrences (every occurrence, confirmed or cancelled, by original start) and skipped
-- appended, keys in that order (json_build_object cannot leave a key out, so the object is
-- closed by hand).  VOLATILE: it reads the occurrences a booking wrote in the same function.
CREATE FUNCTION res_series_answer(s reservation_series, skipped json) RETURNS text
LANGUAGE sql VOLATILE AS $$
SELECT left(res_series_json(s)::text, -1) || ', "occurrences" : '
    || (SELECT coalesce(json_agg(res_json(r) ORDER BY r.occurrence_start, r.id), '[]')
        FROM reservations r WHERE r.series_id = s.id)::text
    || CASE WHEN skipped IS NULL THEN '' ELSE ', "skipped" : ' || skipped::text END || '}'
$$;

-- The payload of a series event (docs/events.md#reservation_events): the envelope, the
-- version, the series and the ids of its confirmed occurrences that start after at (the
-- caller's clock: the service's now where it passes one) as they are now.
CREATE FUNCTION res_series_event(event_type text, s reservation_series,
    at timestamptz DEFAULT now()) RETURNS json
LANGUAGE sql VOLATILE AS $$
SELECT json_build_object('event_type', event_type, 'event_id', gen_random_uuid(),
    'occurred_at',
    to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'version', s.version, 'series', res_series_json(s),
    'occurrence_ids', (SELECT coalesce(json_agg(r.id ORDER BY r.occurrence_start, r.id), '[]')
        FROM reservations r
        WHERE r.series_id = s.id AND r.status = 'confirmed' AND r.start_time > at))
$$;

-- What the C side needs before it expands a rule (series creates are rare: one more round
-- trip): the room (problem room_unknown / room_inactive as res_room_zone), its zone, the local
-- start of the first requested occurrence (as the client wrote it when without an offset, so
-- that 02:30 stays 02:30 on the days that have it), the duration in seconds (the times
-- resolved as res_book resolves them), today's date in the zone at now_s ("YYYY-MM-DD") and
-- the first requested start as an instant (given_s: a start beyond the horizon is answered as
-- a single booking's).
CREATE FUNCTION res_series_start(room bigint, start_s bigint, start_local timestamp,
    end_s bigint, end_local timestamp, now_s bigint,
    OUT problem text, OUT zone text, OUT local_start text, OUT duration_s bigint,
    OUT today text, OUT given_s bigint)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    SELECT * INTO problem, zone FROM res_room_zone(room);
    IF problem IS NOT NULL THEN
        RETURN;
    END IF;
    start_s := coalesce(start_s, extract(epoch FROM start_local AT TIME ZONE zone)::bigint);
    end_s := coalesce(end_s, extract(epoch FROM end_local AT TIME ZONE zone)::bigint);
    local_start := res_local_text(coalesce(start_local, to_timestamp(start_s) AT TIME ZONE zone));
    duration_s := end_s - start_s;
    today := res_local_date(now_s, zone);
    given_s := start_s;
END
$$;

-- The local date of instant now_s in zone as the C side reads it ("YYYY-MM-DD").
CREATE FUNCTION res_local_date(now_s bigint, zone text) RETURNS text LANGUAGE sql STABLE
RETURN to_char(to_timestamp(now_s) AT TIME ZONE zone, 'YYYY-MM-DD');

-- The stored rule of series s as RRULE text with its EXDATEs (rrule_parse_text).
CREATE FUNCTION res_series_rule(s reservation_series) RETURNS text LANGUAGE sql STABLE
RETURN s.rrule || CASE WHEN cardinality(s.exdates) > 0
    THEN ';EXDATE=' || array_to_string(ARRAY(SELECT to_char(d, 'YYYYMMDD')
                                             FROM unnest(s.exdates) AS d), ',')
    ELSE '' END;

-- The claim of Idempotency-Key idem_key (NULL: none) of user_id for a create with request
-- hash idem_hash, shared by res_book and res_book_series: outcome NULL when this call claimed it
-- (res_keep_key stores the answer, res_release_key gives it up), else 'replay' (body = the
-- first response) or 'key_mismatch'.  Waits while a twin's claim on the key is uncommitted.  A
-- key that vanished between the claim and its lookup (swept) raises serialization_failure: the
-- caller runs the call again.
CREATE FUNCTION res_claim_key(user_id bigint, idem_key text, idem_hash text,
    OUT outcome text, OUT body text)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    stored_hash text;
BEGIN
    IF idem_key IS NULL THEN
        RETURN;
    END IF;
    INSERT INTO idempotency_keys AS i (user_id, key, request_hash, status, response)
    VALUES (res_claim_key.user_id, idem_key, idem_hash, 0, '') ON CONFLICT DO NOTHING;
    IF FOUND THEN
        RETURN;
    END IF;
    SELECT i.request_hash, i.response INTO stored_hash, body FROM idempotency_keys i
    WHERE i.user_id = res_claim_key.user_id AND i.key = idem_key;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'idempotency key swept meanwhile' USING ERRCODE = 'serialization_failure';
    END IF;
    IF stored_hash = idem_hash THEN
        outcome := 'replay';
    ELSE
        outcome := 'key_mismatch';
        body := NULL;
    END IF;
END
$$;

-- Only successful creations are remembered: a refused create gives its claim up (a twin
-- waiting on the key then books on its own), a done one stores its 201 body for replays.
CREATE FUNCTION res_release_key(user_id bigint, idem_key text) RETURNS void
LANGUAGE sql VOLATILE AS $$
DELETE FROM idempotency_keys i WHERE i.user_id = res_release_key.user_id AND i.key = idem_key
$$;

CREATE FUNCTION res_keep_key(user_id bigint, idem_key text, body text) RETURNS void
LANGUAGE sql VOLATILE AS $$
UPDATE idempotency_keys i SET status = 201, response = body
WHERE i.user_id = res_keep_key.user_id AND i.key = idem_key
$$;

-- res_book of migration 002 with its key handling in res_claim_key / res_release_key /
-- res_keep_key, which res_book_series shares (the body is otherwise 002's).
CREATE OR REPLACE FUNCTION res_book(room bigint, user_id bigint, purpose text,
    start_s bigint, start_local timestamp, end_s bigint, end_local timestamp,
    issued_ms bigint, topic text, idem_key text, idem_hash text,
    now_s bigint, min_s bigint, max_s bigint, horizon_s bigint,
    OUT outcome text, OUT body text)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    zone text;
    active boolean;
    r reservations;
BEGIN
    SELECT * INTO outcome, zone FROM res_room_zone(room);
    IF outcome IS NOT NULL THEN
        RETURN;
    END IF;
    start_s := coalesce(start_s, extract(epoch FROM start_local AT TIME ZONE zone)::bigint);
    end_s := coalesce(end_s, extract(epoch FROM end_local AT TIME ZONE zone)::bigint);
    IF res_span_breaks_rules(start_s, end_s, now_s, min_s, max_s, horizon_s) THEN
        outcome := 'rules';
        body := json_build_array(start_s, end_s)::text;
        RETURN;
    END IF;
    IF revoke_guard(res_book.user_id, issued_ms) THEN
        outcome := 'revoked';
        RETURN;
    END IF;
    SELECT * INTO outcome, body FROM res_claim_key(res_book.user_id, idem_key, idem_hash);
    IF outcome IS NOT NULL THEN
        RETURN;
    END IF;
    SELECT m.active AND NOT m.deleted INTO active FROM rooms m WHERE m.id = room
    FOR NO KEY UPDATE;
    IF active THEN
        body := res_conflicts(room, start_s, end_s, 0)::text;
        outcome := CASE WHEN body IS NULL THEN 'done' ELSE 'conflict' END;
    ELSE
        outcome := 'room_unavailable';
    END IF;
    IF outcome <> 'done' THEN
        PERFORM res_release_key(res_book.user_id, idem_key);
        RETURN;
    END IF;
    INSERT INTO reservations (room_id, user_id, purpose, start_time, end_time)
    VALUES (room, res_book.user_id, res_book.purpose, to_timestamp(start_s), to_timestamp(end_s))
    RETURNING * INTO r;
    INSERT INTO outbox (topic, key, payload)
    VALUES (res_book.topic, r.id::text, res_event('reservation_created', r));
    body := res_json(r)::text;
    PERFORM res_keep_key(res_book.user_id, idem_key, body);
END
$$;

-- The local starts (ascending) that the C side expanded in zone, as ls (those kept) and ss
-- (their instants): a UTC UNTIL until_s (Unix seconds; NULL: none) drops the later ones.
-- outcome: 'empty' when none is left, 'too_many' for more than max_occurrences, else NULL.
CREATE FUNCTION res_series_instants(starts timestamp[], zone text, until_s bigint,
    max_occurrences int, OUT ls timestamp[], OUT ss bigint[], OUT outcome text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    SELECT coalesce(array_agg(o.l ORDER BY o.i), '{}'), coalesce(array_agg(o.s ORDER BY o.i), '{}')
    INTO ls, ss
    FROM (SELECT u.i, u.l, extract(epoch FROM u.l AT TIME ZONE zone)::bigint AS s
          FROM unnest(starts) WITH ORDINALITY AS u (l, i)) o
    WHERE until_s IS NULL OR o.s <= until_s;
    outcome := CASE WHEN cardinality(ss) = 0 THEN 'empty'
        WHEN cardinality(ss) > max_occurrences THEN 'too_many' END;
END
$$;

-- The occurrences of a series at local starts ls / instants ss (parallel arrays, ascending)
-- lasting duration_s, checked as res_book_series and res_change_series check them before any
-- lock: outcome 'rules' with body [index, start, end, local date] for the first that breaks a
-- booking rule, 'overlap' with body [index, local date] for the first that overlaps the next
-- one (a duration longer than the time between them), else NULL; indexes count from base.
CREATE FUNCTION res_series_check(ls timestamp[], ss bigint[], duration_s bigint, base int,
    now_s bigint, min_s bigint, max_s bigint, horizon_s bigint,
    OUT outcome text, OUT body text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    bad record;
BEGIN
    SELECT u.i - 1 + base AS i, u.s, ls[u.i::int] AS l INTO bad
    FROM unnest(ss) WITH ORDINALITY AS u (s, i)
    WHERE res_span_breaks_rules(u.s, u.s + duration_s, now_s, min_s, max_s, horizon_s)
    ORDER BY u.i LIMIT 1;
    IF FOUND THEN
        outcome := 'rules';
        body := json_build_array(bad.i, bad.s, bad.s + duration_s, bad.l::date)::text;
        RETURN;
    END IF;
    SELECT u.i - 1 + base AS i, ls[u.i::int] AS l INTO bad
    FROM unnest(ss) WITH ORDINALITY AS u (s, i)
    WHERE u.i < cardinality(ss) AND ss[u.i::int + 1] < u.s + duration_s
    ORDER BY u.i LIMIT 1;
    IF FOUND THEN
        outcome := 'overlap';
        body := json_build_array(bad.i, bad.l::date)::text;
    END IF;
END
$$;

-- The conflicts of the occurrences at local starts ls / instants ss (parallel arrays) lasting
-- duration_s in room: the confirmed reservations there overlapping them, except the ids in
-- except_ids.  per_occurrence: [{occurrence_start, start_time, end_time, conflicts}] of each
-- conflicting occurrence by index, slots: every conflicting slot once, by start, hit: the
-- 1-based indexes of the conflicting occurrences (all NULL without a conflict): the details of
-- a 409 and the skipped of an answer (docs/api.md#recurring-reservations).  Run under the
-- room's lock by res_book_series and res_change_series.
CREATE FUNCTION res_series_conflicts(room bigint, ls timestamp[], ss bigint[],
    duration_s bigint, except_ids bigint[], OUT per_occurrence json, OUT slots json,
    OUT hit int[])
LANGUAGE plpgsql STABLE AS $$
BEGIN
    WITH hits AS MATERIALIZED (
        SELECT u.i, u.l, u.s, r.id, r.start_time, r.end_time
        FROM unnest(ls, ss) WITH ORDINALITY AS u (l, s, i)
        JOIN reservations r ON r.room_id = room AND r.status = 'confirmed'
        AND r.id <> ALL (except_ids)
        AND tstzrange(r.start_time, r.end_time, '[)')
            && tstzrange(to_timestamp(u.s), to_timestamp(u.s + duration_s), '[)'))
    SELECT
        (SELECT json_agg(json_build_object('occurrence_start', res_local_text(o.l),
                'start_time', res_utc_text(o.s), 'end_time', res_utc_text(o.s + duration_s),
                'conflicts', o.c) ORDER BY o.i)
         FROM (SELECT h.i, h.l, h.s, json_agg(json_build_object(
                    'start_time', res_utc_text(extract(epoch FROM h.start_time)::bigint),
                    'end_time', res_utc_text(extract(epoch FROM h.end_time)::bigint))
                ORDER BY h.start_time, h.id) AS c
               FROM hits h GROUP BY h.i, h.l, h.s) o),
        (SELECT json_agg(json_build_object(
                'start_time', res_utc_text(extract(epoch FROM d.start_time)::bigint),
                'end_time', res_utc_text(extract(epoch FROM d.end_time)::bigint))
            ORDER BY d.start_time, d.id)
         FROM (SELECT DISTINCT h.id, h.start_time, h.end_time FROM hits h) d),
        ARRAY(SELECT DISTINCT h.i::int FROM hits h)
    INTO per_occurrence, slots, hit;
    IF cardinality(hit) = 0 THEN
        hit := NULL;
    END IF;
END
$$;

-- POST /reservations with a recurrence, in one call.  starts are the local starts of the
-- occurrences in zone (the room's zone when the C side expanded the rule; at most
-- max_occurrences + 1 of them, ascending, one per date), first_start the rule's first date at
-- that time (DTSTART, which may be an EXDATE), duration_s the length of each, until_s a UTC
-- UNTIL (Unix seconds; NULL: none) after which starts are dropped, on_conflict 'fail' or
-- 'skip'; the rest as res_book.  outcome, in the order the checks run:
--   room_unknown, room_inactive   the room (read without a lock)
--   empty                         no occurrence is left (a UTC UNTIL before the first)
--   too_many                      more than max_occurrences
--   rules                         body = [index (0: the first), start, end, local date] of the
--                                 first occurrence that breaks a booking rule
--   overlap                       body = [index, local date]: that occurrence overlaps the next
--                                 one (a duration longer than the time between them)
--   revoked, replay, key_mismatch as res_book
--   room_unavailable              the room, once locked, cannot take bookings
--   conflict                      body = {occurrences: [{occurrence_start, start_time,
--                                 end_time, conflicts}], conflicts: every slot, by start}: with
--                                 'fail' any conflict, with 'skip' when every one conflicts
--   done                          body = the series (res_series_answer with skipped); the rows,
--                                 their events and the key's response are written
-- The room's row is locked FOR NO KEY UPDATE after the key's claim, exactly as res_book locks
-- it, so a series and single bookings of the room queue on one lock; under it one query finds
-- the conflicts of every occurrence (the exclusion constraint's index probed per occurrence)
-- and one INSERT books them.  A room whose zone is no longer zone (changed since the C side
-- read it) raises serialization_failure, as does a key swept between its claim and its lookup:
-- the caller reads the room and expands the rule again.  Outcomes other than done leave nothing
-- behind.
CREATE FUNCTION res_book_series(room bigint, user_id bigint, purpose text, recurrence json,
    rrule text, exdates date[], zone text, first_start timestamp, starts timestamp[],
    duration_s bigint, until_s bigint, on_conflict text,
    issued_ms bigint, topic text, idem_key text, idem_hash text,
    now_s bigint, min_s bigint, max_s bigint, horizon_s bigint, max_occurrences int,
    OUT outcome text, OUT body text)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    room_zone text;
    active boolean;
    ls timestamp[];
    ss bigint[];
    n int;
    per_occurrence json;
    slots json;
    hit int[];
    created reservation_series;
BEGIN
    SELECT * INTO outcome, room_zone FROM res_room_zone(room);
    IF outcome IS NOT NULL THEN
        RETURN;
    END IF;
    SELECT * INTO ls, ss, outcome FROM res_series_instants(starts, zone, until_s, max_occurrences);
    IF outcome IS NOT NULL THEN
        RETURN;
    END IF;
    n := cardinality(ss);
    SELECT * INTO outcome, body
    FROM res_series_check(ls, ss, duration_s, 0, now_s, min_s, max_s, horizon_s);
    IF outcome IS NOT NULL THEN
        RETURN;
    END IF;
    IF revoke_guard(res_book_series.user_id, issued_ms) THEN
        outcome := 'revoked';
        RETURN;
    END IF;
    SELECT * INTO outcome, body FROM res_claim_key(res_book_series.user_id, idem_key, idem_hash);
    IF outcome IS NOT NULL THEN
        RETURN;
    END IF;
    SELECT m.active AND NOT m.deleted, m.time_zone INTO active, room_zone FROM rooms m
    WHERE m.id = room FOR NO KEY UPDATE;
    IF room_zone IS DISTINCT FROM zone THEN
        RAISE EXCEPTION 'room % changed its time zone meanwhile', room
            USING ERRCODE = 'serialization_failure';
    END IF;
    IF active THEN
        SELECT * INTO per_occurrence, slots, hit
        FROM res_series_conflicts(room, ls, ss, duration_s, '{}');
        outcome := CASE WHEN hit IS NULL THEN 'done'
            WHEN on_conflict = 'skip' AND cardinality(hit) < n THEN 'done'
            ELSE 'conflict' END;
    ELSE
        outcome := 'room_unavailable';
    END IF;
    IF outcome <> 'done' THEN
        IF outcome = 'conflict' THEN
            body := json_build_object('occurrences', per_occurrence, 'conflicts', slots)::text;
        END IF;
        PERFORM res_release_key(res_book_series.user_id, idem_key);
        RETURN;
    END IF;
    INSERT INTO reservation_series (room_id, user_id, purpose, recurrence, rrule, exdates,
        time_zone, first_start, duration_s)
    VALUES (room, res_book_series.user_id, res_book_series.purpose, res_book_series.recurrence,
        res_book_series.rrule, res_book_series.exdates, zone, res_book_series.first_start,
        res_book_series.duration_s)
    RETURNING * INTO created;
    WITH r AS (
        INSERT INTO reservations (room_id, user_id, purpose, start_time, end_time, series_id,
            occurrence_start)
        SELECT room, created.user_id, created.purpose, to_timestamp(u.t),
            to_timestamp(u.t + created.duration_s), created.id, u.l
        FROM unnest(ls, ss) WITH ORDINALITY AS u (l, t, i)
        WHERE u.i <> ALL (coalesce(hit, '{}'))
        RETURNING *)
    INSERT INTO outbox (topic, key, payload)
    SELECT res_book_series.topic, r.id::text, res_event('reservation_created', r)
    FROM r ORDER BY r.occurrence_start;
    INSERT INTO outbox (topic, key, payload)
    VALUES (res_book_series.topic, 'series-' || created.id,
        res_series_event('reservation_series_created', created));
    body := res_series_answer(created, coalesce(per_occurrence, '[]'));
    PERFORM res_keep_key(res_book_series.user_id, idem_key, body);
END
$$;

-- The confirmed occurrences of series series_id that have not begun at at (the caller's clock),
-- from local date from_date on (NULL: all), cancelled with reason and their events, by a caller
-- that holds the series' lock (res_cancel_series, res_cancel_following).
CREATE FUNCTION res_cancel_occurrences(series_id bigint, from_date date, reason text, topic text,
    at timestamptz DEFAULT now())
RETURNS void LANGUAGE sql VOLATILE AS $$
WITH r AS (
    UPDATE reservations r SET status = 'cancelled', cancel_reason = reason,
        updated_at = now(), version = r.version + 1
    WHERE r.series_id = res_cancel_occurrences.series_id AND r.status = 'confirmed'
    AND r.start_time > at AND (from_date IS NULL OR r.occurrence_start::date >= from_date)
    RETURNING *)
INSERT INTO outbox (topic, key, payload)
SELECT res_cancel_occurrences.topic, r.id::text, res_event('reservation_cancelled', r)
FROM r ORDER BY r.occurrence_start
$$;

-- DELETE /reservations/series/{id} in one call, by caller (admin: any series): its confirmed
-- future occurrences are cancelled (cancelled_by_user for the owner's own, else
-- cancelled_by_admin) and the series gets status cancelled, with their events.  if_match: the
-- series' version (0: any).  outcome: not_found, forbidden, stale, done (also for a series
-- already cancelled: nothing is written; a series that ended has no confirmed future
-- occurrence left, res_cancel_future and res_cancel_following see to it).  The series is
-- locked before its occurrences (the lock order at the top of this file).
CREATE FUNCTION res_cancel_series(id bigint, caller bigint, admin boolean, if_match bigint,
    topic text, OUT outcome text)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    s reservation_series;
    reason text;
BEGIN
    -- A series-level change: its occurrences' events get no mail of their own (009_mail.sql).
    PERFORM set_config('res.series_op', 'on', true);
    SELECT * INTO s FROM reservation_series x WHERE x.id = res_cancel_series.id FOR UPDATE;
    IF NOT FOUND THEN
        outcome := 'not_found';
        RETURN;
    ELSIF NOT admin AND s.user_id <> caller THEN
        outcome := 'forbidden';
        RETURN;
    ELSIF s.status = 'cancelled' THEN
        outcome := 'done';
        RETURN;
    ELSIF if_match <> 0 AND s.version <> if_match THEN
        outcome := 'stale';
        RETURN;
    END IF;
    reason := CASE WHEN s.user_id = caller THEN 'cancelled_by_user' ELSE 'cancelled_by_admin' END;
    PERFORM res_cancel_occurrences(s.id, NULL, reason, topic);
    UPDATE reservation_series x SET status = 'cancelled', cancel_reason = reason,
        updated_at = now(), version = x.version + 1
    WHERE x.id = s.id RETURNING * INTO s;
    INSERT INTO outbox (topic, key, payload)
    VALUES (res_cancel_series.topic, 'series-' || s.id,
        res_series_event('reservation_series_cancelled', s));
    outcome := 'done';
END
$$;

-- A room deletion (by_room, owner_id the room) or a user deletion (owner_id the user) in the
-- caller's transaction, after the room's row was locked (room deletion) or the user's
-- revocation applied: the active series of the room or user end (status cancelled with reason,
-- reservation_series_cancelled), and the confirmed future reservations of the room or user are
-- cancelled with reason and their events, with every confirmed future occurrence of an ended
-- series, in whatever room (an occurrence moved to another room ends with its series: docs/
-- api.md#recurring-reservations).  The series touched (those ended and those with an
-- occurrence cancelled here) are locked first, in id order, then the reservations: the lock
-- order of every series writer (see the top of this file), so that a DELETE of a series
-- meanwhile waits instead of deadlocking.  Returns how many reservations it cancelled.
CREATE FUNCTION res_cancel_future(by_room boolean, owner_id bigint, reason text, topic text)
RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    ending bigint[];
    n bigint;
BEGIN
    ending := ARRAY(SELECT x.id FROM reservation_series x
        WHERE x.status = 'active'
        AND CASE WHEN by_room THEN x.room_id = owner_id ELSE x.user_id = owner_id END);
    PERFORM 1 FROM reservation_series x
    WHERE x.id = ANY (ending) OR x.id IN (SELECT r.series_id FROM reservations r
        WHERE r.status = 'confirmed' AND r.start_time > now()
        AND CASE WHEN by_room THEN r.room_id = owner_id ELSE r.user_id = owner_id END)
    ORDER BY x.id FOR UPDATE;
    -- Again under the locks: a series may have ended or moved meanwhile.
    ending := ARRAY(SELECT x.id FROM reservation_series x
        WHERE x.status = 'active'
        AND CASE WHEN by_room THEN x.room_id = owner_id ELSE x.user_id = owner_id END);
    -- Only the occurrences of the series that end here are covered by those series' CANCEL
    -- mails; an occurrence cancelled because it sits in the deleted room while its series goes
    -- on gets a mail of its own (009_mail.sql reads the list ",id,id,").
    PERFORM set_config('res.series_op', ',' || array_to_string(ending, ',') || ',', true);
    WITH r AS (
        UPDATE reservations r SET status = 'cancelled', cancel_reason = reason,
            updated_at = now(), version = r.version + 1
        WHERE r.status = 'confirmed' AND r.start_time > now()
        AND (CASE WHEN by_room THEN r.room_id = owner_id ELSE r.user_id = owner_id END
             OR r.series_id = ANY (ending))
        RETURNING *),
    e AS (
        INSERT INTO outbox (topic, key, payload)
        SELECT res_cancel_future.topic, r.id::text, res_event('reservation_cancelled', r)
        FROM r ORDER BY r.series_id, r.occurrence_start, r.id)
    SELECT count(*) INTO n FROM r;
    WITH x AS (
        UPDATE reservation_series x SET status = 'cancelled', cancel_reason = reason,
            updated_at = now(), version = x.version + 1
        WHERE x.id = ANY (ending)
        RETURNING *)
    INSERT INTO outbox (topic, key, payload)
    SELECT res_cancel_future.topic, 'series-' || x.id,
        res_series_event('reservation_series_cancelled', x)
    FROM x ORDER BY x.id;
    RETURN n;
END
$$;

-- PUT /reservations/{id} as before; a changed occurrence of a series becomes an exception of
-- it (reservations.exception: the series keeps it as it is when the pattern changes).  The
-- flag is not part of the reservation's JSON, so the answer and the event stay res_change's.
CREATE OR REPLACE FUNCTION res_change_answer(id bigint, caller bigint, admin boolean, room bigint,
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
    IF outcome = 'done' THEN
        UPDATE reservations r SET exception = true
        WHERE r.id = res_change_answer.id AND r.series_id IS NOT NULL AND NOT r.exception;
    END IF;
END
$$;
