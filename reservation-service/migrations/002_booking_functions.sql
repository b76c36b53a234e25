-- reservation-service: a reservation's JSON and its events, and the booking and the change as
-- server-side functions, so that each request is one statement (one round trip before COMMIT)
-- however many steps it takes (docs/architecture.md#request-walk).  repo.c calls them; the
-- outcomes they return are mapped to replies by handlers.c.

-- A reservation as the API answers a write and as the events carry it
-- (docs/api.md#reservation-service).  Reads build the same object in C from plain columns
-- (res_from_columns in reservation-service/src/repo.c, faster: bench/json_ab.py); the tests compare
-- the two.  LANGUAGE sql and STABLE: the planner inlines it.
CREATE FUNCTION res_json(r reservations) RETURNS json LANGUAGE sql STABLE AS $$
SELECT json_build_object('id', r.id, 'room_id', r.room_id, 'user_id', r.user_id,
    'purpose', r.purpose,
    'start_time', to_char(r.start_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
    'end_time', to_char(r.end_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
    'status', r.status, 'cancel_reason', r.cancel_reason,
    'created_at', to_char(r.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'updated_at', to_char(r.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'version', r.version)
$$;

-- The payload of a reservation event: the envelope of docs/events.md#envelope, as OUTBOX_EVENT
-- (common/include/outbox.h) spells it for the other services, then the version and the
-- reservation.
CREATE FUNCTION res_event(event_type text, r reservations) RETURNS json LANGUAGE sql VOLATILE
AS $$
SELECT json_build_object('event_type', event_type, 'event_id', gen_random_uuid(),
    'occurred_at',
    to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'version', r.version, 'reservation', res_json(r))
$$;

-- The confirmed reservations of room overlapping [start_s, end_s) (Unix seconds) except one id,
-- as a JSON array of {start_time, end_time} ordered by start (NULL when there are none): the
-- "conflicts" of a 409.  The exclusion constraint's GiST index answers the overlap.
CREATE FUNCTION res_conflicts(room bigint, start_s bigint, end_s bigint, except_id bigint)
RETURNS json LANGUAGE sql STABLE AS $$
SELECT json_agg(json_build_object(
        'start_time', to_char(r.start_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
        'end_time', to_char(r.end_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
    ORDER BY r.start_time)
FROM reservations r
WHERE r.room_id = room AND r.status = 'confirmed' AND r.id <> except_id
AND tstzrange(r.start_time, r.end_time, '[)') && tstzrange(to_timestamp(start_s), to_timestamp(end_s), '[)')
$$;

-- The room a booking names: problem is room_unknown (no such room, or deleted), room_inactive or
-- NULL (bookable, without a lock), zone its time zone.
CREATE FUNCTION res_room_zone(room bigint, OUT problem text, OUT zone text)
LANGUAGE sql STABLE AS $$
SELECT CASE WHEN m.id IS NULL THEN 'room_unknown' WHEN NOT m.active THEN 'room_inactive' END,
    m.time_zone
FROM (SELECT 1) one LEFT JOIN rooms m ON m.id = room AND NOT m.deleted
$$;

-- Whether [start_s, end_s) breaks a booking rule at now_s (all Unix seconds): the predicate of
-- res_validate_span() (reservation-service/src/validate.c), which words the problems.
CREATE FUNCTION res_span_breaks_rules(start_s bigint, end_s bigint, now_s bigint,
    min_s bigint, max_s bigint, horizon_s bigint)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
SELECT end_s <= start_s OR start_s <= now_s OR start_s > now_s + horizon_s
    OR end_s - start_s < min_s OR end_s - start_s > max_s
$$;

-- POST /reservations in one call.  The times are Unix seconds, or (when the client wrote no
-- offset) wall-clock times in the room's zone (*_local); the rules are the configured bounds in
-- seconds and now_s the service's clock.  outcome, in the order the checks run:
--   room_unknown, room_inactive   the room (read without a lock: a validation error)
--   rules                         body = [start, end] resolved, for the service to word
--   revoked                       the caller's token is void (revoke_guard, before any row lock)
--   replay, key_mismatch          the Idempotency-Key was used: body = the first response
--   room_unavailable              the room, once locked, cannot take bookings
--   conflict                      body = the overlapping spans
--   done                          body = the reservation; the row, its event and the key's
--                                 response are written
-- Writers of one room queue on its row lock (FOR NO KEY UPDATE), taken after the key's claim so
-- that twins with one key queue on the key; under the lock the conflict check sees every
-- committed booking of the room, and the exclusion constraint stays the guarantee.  Outcomes
-- other than done leave nothing behind (a claimed key is removed again), so the caller commits
-- whatever the outcome.  A key that vanished between the claim and its lookup (swept) raises
-- serialization_failure: the caller runs the call again.
CREATE FUNCTION res_book(room bigint, user_id bigint, purpose text,
    start_s bigint, start_local timestamp, end_s bigint, end_local timestamp,
    issued_ms bigint, topic text, idem_key text, idem_hash text,
    now_s bigint, min_s bigint, max_s bigint, horizon_s bigint,
    OUT outcome text, OUT body text)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    zone text;
    active boolean;
    stored_hash text;
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
    IF idem_key IS NOT NULL THEN
        -- Waits while a twin's claim on the key is uncommitted.
        INSERT INTO idempotency_keys AS i (user_id, key, request_hash, status, response)
        VALUES (res_book.user_id, idem_key, idem_hash, 0, '') ON CONFLICT DO NOTHING;
        IF NOT FOUND THEN
            SELECT i.request_hash, i.response INTO stored_hash, body FROM idempotency_keys i
            WHERE i.user_id = res_book.user_id AND i.key = idem_key;
            IF NOT FOUND THEN
                RAISE EXCEPTION 'idempotency key swept meanwhile'
                    USING ERRCODE = 'serialization_failure';
            END IF;
            IF stored_hash = idem_hash THEN
                outcome := 'replay';
            ELSE
                outcome := 'key_mismatch';
                body := NULL;
            END IF;
            RETURN;
        END IF;
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
        -- Only successful creations are remembered: a twin waiting on the key books on its own.
        IF idem_key IS NOT NULL THEN
            DELETE FROM idempotency_keys i
            WHERE i.user_id = res_book.user_id AND i.key = idem_key;
        END IF;
        RETURN;
    END IF;
    INSERT INTO reservations (room_id, user_id, purpose, start_time, end_time)
    VALUES (room, res_book.user_id, res_book.purpose, to_timestamp(start_s), to_timestamp(end_s))
    RETURNING * INTO r;
    INSERT INTO outbox (topic, key, payload)
    VALUES (res_book.topic, r.id::text, res_event('reservation_created', r));
    body := res_json(r)::text;
    IF idem_key IS NOT NULL THEN
        UPDATE idempotency_keys i SET status = 201, response = body
        WHERE i.user_id = res_book.user_id AND i.key = idem_key;
    END IF;
END
$$;

-- PUT/PATCH /reservations/{id} in one call, by caller (admin: any reservation).  room, purpose
-- and the times are NULL where the body keeps them; moved says that it names a room or a time
-- (then the room and the rules are checked).  if_match is If-Match's version (0: none; the
-- version read first must then still be current under the lock).  outcome, in the order the
-- checks run: not_found, forbidden, room_unknown, room_inactive, rules (body = [start, end]),
-- cancelled, stale, room_unavailable, conflict (body = the overlapping spans), done (body = the
-- reservation; the row and its event are written).  Rooms are locked before the reservation, in
-- id order, as every writer does; a reservation moved to another room between the first read and
-- its lock raises serialization_failure: the caller runs the call again.
CREATE FUNCTION res_change(id bigint, caller bigint, admin boolean, room bigint, purpose text,
    start_s bigint, start_local timestamp, end_s bigint, end_local timestamp, moved boolean,
    if_match bigint, topic text, now_s bigint, min_s bigint, max_s bigint, horizon_s bigint,
    OUT outcome text, OUT body text)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    cur reservations;
    locked reservations;
    zone text;
    active boolean;
BEGIN
    SELECT * INTO cur FROM reservations r WHERE r.id = res_change.id;
    IF NOT FOUND THEN
        outcome := 'not_found';
        RETURN;
    ELSIF NOT admin AND cur.user_id <> caller THEN
        outcome := 'forbidden';
        RETURN;
    END IF;
    room := coalesce(room, cur.room_id);
    IF moved THEN
        SELECT * INTO outcome, zone FROM res_room_zone(room);
        IF outcome IS NOT NULL THEN
            RETURN;
        END IF;
    END IF;
    start_s := coalesce(start_s, extract(epoch FROM start_local AT TIME ZONE zone)::bigint,
        extract(epoch FROM cur.start_time)::bigint);
    end_s := coalesce(end_s, extract(epoch FROM end_local AT TIME ZONE zone)::bigint,
        extract(epoch FROM cur.end_time)::bigint);
    IF moved AND res_span_breaks_rules(start_s, end_s, now_s, min_s, max_s, horizon_s) THEN
        outcome := 'rules';
        body := json_build_array(start_s, end_s)::text;
        RETURN;
    END IF;
    SELECT bool_or(m.id = room AND m.active AND NOT m.deleted) INTO active
    FROM (SELECT * FROM rooms WHERE rooms.id IN (room, cur.room_id) ORDER BY rooms.id
          FOR NO KEY UPDATE) m;
    SELECT * INTO locked FROM reservations r WHERE r.id = res_change.id FOR UPDATE;
    IF NOT FOUND THEN
        outcome := 'not_found';
        RETURN;
    ELSIF locked.room_id <> cur.room_id THEN
        RAISE EXCEPTION 'reservation % moved meanwhile', cur.id
            USING ERRCODE = 'serialization_failure';
    ELSIF locked.status <> 'confirmed' THEN
        outcome := 'cancelled';
        RETURN;
    ELSIF locked.version <> coalesce(nullif(if_match, 0), cur.version) THEN
        outcome := 'stale';
        RETURN;
    ELSIF NOT coalesce(active, false) THEN
        outcome := 'room_unavailable';
        RETURN;
    END IF;
    body := res_conflicts(room, start_s, end_s, cur.id)::text;
    IF body IS NOT NULL THEN
        outcome := 'conflict';
        RETURN;
    END IF;
    UPDATE reservations r SET room_id = room, purpose = coalesce(res_change.purpose, r.purpose),
        start_time = to_timestamp(start_s), end_time = to_timestamp(end_s), updated_at = now(),
        version = r.version + 1
    WHERE r.id = cur.id RETURNING * INTO locked;
    INSERT INTO outbox (topic, key, payload)
    VALUES (res_change.topic, locked.id::text, res_event('reservation_updated', locked));
    outcome := 'done';
    body := res_json(locked)::text;
END
$$;
