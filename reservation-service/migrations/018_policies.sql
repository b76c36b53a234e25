-- Room policies enforced (docs/api.md#room-policies, issue 15 P2).  room-service owns the rules
-- and publishes them with the room; the copy keeps them in rooms.policies (NULL: no rule), and
-- every booking write checks them under the room's row lock, so that two writers of one room
-- cannot both pass a quota of one.  The buffer is the database's own: each reservation keeps a
-- snapshot of its room's buffer (buffer_s) and the exclusion constraint covers the range widened
-- by it.  Bookings of a room that requires approval start as pending (they hold the slot) until
-- an admin approves or rejects them (res_decide).  Migrations 001-017 are never edited: the
-- booking functions are replaced here, with trailing parameters with defaults, so an older
-- binary's calls still resolve during a rolling upgrade (and book without the new checks' role:
-- as an employee).  A pending reservation mails no one until approved (res_mail_items, at the
-- end), and a series written with an override names the rules skipped in its events as a
-- single booking does (outbox_policy_override).

-- policies_known: the copy took the rules from an event that carries them (room-service of
-- this release on).  An event at the copy's version fills them in (a re-publication: docs/
-- operations.md#upgrading-to-room-policies); until then the room has no rules, as rooms that
-- room-service never gave any.
ALTER TABLE rooms
    ADD COLUMN policies jsonb CHECK (policies IS NULL OR jsonb_typeof(policies) = 'object'),
    ADD COLUMN policies_known boolean NOT NULL DEFAULT false;

ALTER TABLE reservations
    ADD COLUMN buffer_s integer NOT NULL DEFAULT 0 CHECK (buffer_s BETWEEN 0 AND 14400),
    DROP CONSTRAINT reservations_status_check,
    ADD CONSTRAINT reservations_status_check
        CHECK (status IN ('confirmed', 'pending', 'cancelled'));

-- The time a reservation keeps from others: [start, end + its buffer).  IMMUTABLE although
-- timestamptz + interval is only STABLE in general: an interval of seconds alone does not
-- depend on the session's time zone (only months and days do), and an index expression needs
-- it.  LANGUAGE sql: inlined, so the queries and the constraint's index agree.
CREATE FUNCTION res_busy(start_time timestamptz, end_time timestamptz, buffer_s integer)
RETURNS tstzrange LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN tstzrange(start_time, end_time + buffer_s * interval '1 second', '[)');

-- The guarantee, now with buffers and pending bookings: no two active reservations of a room
-- come closer than the first one's buffer.  One statement: the table never lacks a constraint.
-- The old constraint's index also served the reads of confirmed spans (availability, search,
-- grid, feeds, alternatives): reservations_active_span takes that role for both active states.
-- The time these builds take on a large table: docs/operations.md#upgrading-to-room-policies.
ALTER TABLE reservations
    DROP CONSTRAINT reservations_no_overlap,
    ADD CONSTRAINT reservations_no_overlap EXCLUDE USING gist (
        room_id WITH =, res_busy(start_time, end_time, buffer_s) WITH &&
    ) WHERE (status IN ('confirmed', 'pending'));
CREATE INDEX reservations_active_span ON reservations
    USING gist (room_id, tstzrange(start_time, end_time, '[)'))
    WHERE status IN ('confirmed', 'pending');

-- ---- the rules, one function each ----

-- A policy problem as the C side reports it: the rule, the request field it concerns and the
-- reason (docs/api.md#room-policies: 422 with details {field: reason, policy: rule}).
CREATE FUNCTION res_policy_json(policy text, field text, message text) RETURNS json
LANGUAGE sql IMMUTABLE
RETURN json_build_object('policy', policy, 'field', field, 'message', message);

-- allowed_roles / allowed_users: either one admits; admins manage rooms and are never refused.
CREATE FUNCTION res_policy_access(p jsonb, user_id bigint, role text) RETURNS json
LANGUAGE sql IMMUTABLE
RETURN CASE WHEN role <> 'admin' AND (p ? 'allowed_roles' OR p ? 'allowed_users')
    AND NOT coalesce(p->'allowed_roles' ? role, false)
    AND NOT coalesce(p->'allowed_users' @> to_jsonb(user_id), false)
    THEN res_policy_json(CASE WHEN p ? 'allowed_users' AND NOT p ? 'allowed_roles'
            THEN 'allowed_users' ELSE 'allowed_roles' END, 'room_id',
        'names a room restricted to '
        || concat_ws(' and ', CASE WHEN p ? 'allowed_roles' THEN 'the roles '
                || (SELECT string_agg(x, ', ') FROM jsonb_array_elements_text(p->'allowed_roles') x) END,
            CASE WHEN p ? 'allowed_users' THEN 'certain users' END)) END;

-- min_duration_minutes / max_duration_minutes: they replace the service's bounds in this room.
CREATE FUNCTION res_policy_duration(p jsonb, start_s bigint, end_s bigint) RETURNS json
LANGUAGE sql IMMUTABLE
RETURN CASE
    WHEN end_s - start_s < (p->>'min_duration_minutes')::bigint * 60
    THEN res_policy_json('min_duration_minutes', 'end_time',
        format('must be at least %s minutes after start_time in this room',
            p->>'min_duration_minutes'))
    WHEN end_s - start_s > (p->>'max_duration_minutes')::bigint * 60
    THEN res_policy_json('max_duration_minutes', 'end_time',
        format('must be at most %s minutes after start_time in this room',
            p->>'max_duration_minutes')) END;

-- max_advance_days: the start at most that many days after now_s (the service's clock).
CREATE FUNCTION res_policy_advance(p jsonb, start_s bigint, now_s bigint) RETURNS json
LANGUAGE sql IMMUTABLE
RETURN CASE WHEN start_s > now_s + (p->>'max_advance_days')::bigint * 86400
    THEN res_policy_json('max_advance_days', 'start_time',
        format('must be at most %s days ahead in this room', p->>'max_advance_days')) END;

-- opening_hours: every local day the booking touches (in zone, wall-clock: DST-correct) holds
-- its part of it inside one interval of that day; a day without an entry is open all day, []
-- is closed.  A booking across midnight thus needs the first day open until 24:00 and the next
-- from 00:00.
CREATE FUNCTION res_policy_hours(p jsonb, zone text, start_s bigint, end_s bigint) RETURNS json
LANGUAGE plpgsql STABLE AS $$
BEGIN
IF NOT p ? 'opening_hours' THEN
    RETURN NULL;
END IF;
RETURN (SELECT res_policy_json('opening_hours', 'start_time',
    format('must lie within the room''s opening hours (%s: %s, %s time)', x.day,
        coalesce((SELECT string_agg((i->>0) || '-' || (i->>1), ', ')
                  FROM jsonb_array_elements(x.hours) i), 'closed'), zone))
FROM (SELECT to_timestamp(start_s) AT TIME ZONE zone AS ls,
             to_timestamp(end_s) AT TIME ZONE zone AS le) b
CROSS JOIN LATERAL generate_series(date_trunc('day', b.ls), b.le - interval '1 microsecond',
    interval '1 day') AS d
CROSS JOIN LATERAL (SELECT w.day, p->'opening_hours'->w.day AS hours
    FROM (SELECT (ARRAY['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'])
                 [extract(isodow FROM d)::int] AS day) w) x
WHERE jsonb_typeof(x.hours) = 'array'
AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(x.hours) i
    WHERE greatest(b.ls, d) >= d + (i->>0)::interval
    AND least(b.le, d + interval '1 day') <= d + (i->>1)::interval)
ORDER BY d LIMIT 1);
END
$$;

-- max_bookings_per_user_per_day / _per_week: the user's active reservations in the room whose
-- local start day (ISO week, Monday first) is that of start_s, except except_id (a change
-- itself), and this one, at most the limit.  Run under the room's lock: writers of the room
-- count one after the other.
CREATE FUNCTION res_policy_quota(p jsonb, room bigint, zone text, user_id bigint,
    start_s bigint, except_id bigint) RETURNS json
LANGUAGE plpgsql STABLE AS $$
BEGIN
IF NOT (p ? 'max_bookings_per_user_per_day' OR p ? 'max_bookings_per_user_per_week') THEN
    RETURN NULL;
END IF;
RETURN (SELECT CASE
    WHEN q.day_n + 1 > (p->>'max_bookings_per_user_per_day')::int
    THEN res_policy_json('max_bookings_per_user_per_day', 'start_time',
        format('would be booking number %s of this user in this room on that day (at most %s)',
            q.day_n + 1, p->>'max_bookings_per_user_per_day'))
    WHEN q.week_n + 1 > (p->>'max_bookings_per_user_per_week')::int
    THEN res_policy_json('max_bookings_per_user_per_week', 'start_time',
        format('would be booking number %s of this user in this room in that week (at most %s)',
            q.week_n + 1, p->>'max_bookings_per_user_per_week')) END
FROM (SELECT date_trunc('day', to_timestamp(start_s) AT TIME ZONE zone) AS day,
             date_trunc('week', to_timestamp(start_s) AT TIME ZONE zone) AS week) l
CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE r.start_time >= l.day AT TIME ZONE zone
            AND r.start_time < (l.day + interval '1 day') AT TIME ZONE zone) AS day_n,
        count(*) AS week_n
    FROM reservations r
    WHERE r.user_id = res_policy_quota.user_id AND r.room_id = room
    AND r.status IN ('confirmed', 'pending') AND r.id <> except_id
    AND r.start_time >= l.week AT TIME ZONE zone
    AND r.start_time < (l.week + interval '7 days') AT TIME ZONE zone) q);
END
$$;

-- Every rule of room m that a booking of [start_s, end_s) for user_id by a caller of role
-- breaks at now_s (except_id: the reservation a change moves, 0 for none), in rule order, as a
-- JSON array of res_policy_json objects; NULL when it breaks none (or the room has no rules).
-- One entry per rule: a new rule is one more function in the list.  Quotas need the room's
-- lock (see res_policy_quota).  requires_approval is no problem but a state (res_policy_status).
-- The functions with a query are PL/pgSQL for their plan cache (migration 004's lesson: a
-- LANGUAGE sql function that cannot be inlined is planned again on every call).
CREATE FUNCTION res_policy_problems(m rooms, user_id bigint, role text, start_s bigint,
    end_s bigint, now_s bigint, except_id bigint) RETURNS json
LANGUAGE plpgsql STABLE AS $$
BEGIN
IF m.policies IS NULL THEN
    RETURN NULL;
END IF;
RETURN (SELECT json_agg(u.p ORDER BY u.i)
    FROM unnest(ARRAY[
            res_policy_access(m.policies, user_id, role),
            res_policy_duration(m.policies, start_s, end_s),
            res_policy_advance(m.policies, start_s, now_s),
            res_policy_hours(m.policies, m.time_zone, start_s, end_s),
            res_policy_quota(m.policies, m.id, m.time_zone, user_id, start_s, except_id)])
        WITH ORDINALITY AS u (p, i)
    WHERE u.p IS NOT NULL);
END
$$;

-- The first rule of room m about the times alone that [start_s, end_s) breaks at now_s (the
-- check of an alternative offered with a 409), or NULL.
CREATE FUNCTION res_policy_slot(m rooms, start_s bigint, end_s bigint, now_s bigint)
RETURNS json LANGUAGE sql STABLE
RETURN CASE WHEN m.policies IS NOT NULL THEN coalesce(
    res_policy_duration(m.policies, start_s, end_s),
    res_policy_advance(m.policies, start_s, now_s),
    res_policy_hours(m.policies, m.time_zone, start_s, end_s)) END;

-- The names of the rules in problems (a res_policy_problems array): an override's record.
CREATE FUNCTION res_policy_names(problems json) RETURNS text[] LANGUAGE sql IMMUTABLE
RETURN ARRAY(SELECT e->>'policy' FROM json_array_elements(problems) e);

-- The state a new booking of room m takes: pending when the room requires approval, unless an
-- admin books (admins decide on approvals; their own bookings need none) or overrides.
CREATE FUNCTION res_policy_status(m rooms, role text, override boolean) RETURNS text
LANGUAGE sql IMMUTABLE
RETURN CASE WHEN coalesce((m.policies->>'requires_approval')::boolean, false)
    AND role <> 'admin' AND NOT override THEN 'pending' ELSE 'confirmed' END;

-- The duration bounds in seconds that the pre-lock checks (res_span_breaks_rules, and
-- res_series_check for every occurrence of a series) apply in a room with policies p, given the
-- service's min_s and max_s: a room's own bound replaces the service's (it is checked under the
-- lock by res_policy_duration, so here it admits anything); with an admin's override the looser
-- of the two applies (an override is never stricter than no override).
CREATE FUNCTION res_policy_bounds(p jsonb, override boolean, min_s bigint, max_s bigint,
    OUT lo bigint, OUT hi bigint)
LANGUAGE sql IMMUTABLE AS $$
SELECT CASE WHEN NOT coalesce(p ? 'min_duration_minutes', false) THEN min_s
        WHEN override THEN least(min_s, (p->>'min_duration_minutes')::bigint * 60) ELSE 0 END,
    CASE WHEN NOT coalesce(p ? 'max_duration_minutes', false) THEN max_s
        WHEN override THEN greatest(max_s, (p->>'max_duration_minutes')::bigint * 60)
        ELSE 9223372036854775807 END
$$;

-- The event (a JSON object) with one more member key: value (NULL: null), added last: the
-- members keep their order (jsonb's || would sort them).
CREATE FUNCTION res_event_with(event json, key text, value json) RETURNS json
LANGUAGE sql IMMUTABLE
RETURN (left(event::text, -1) || ', ' || to_json(key)::text || ' : '
    || coalesce(value::text, 'null') || '}')::json;

-- The payload of a reservation event with "policy_override": the rules an admin's override
-- skipped (docs/events.md), res_event's object otherwise.
CREATE FUNCTION res_event_overridden(event_type text, r reservations, skipped text[])
RETURNS json LANGUAGE sql VOLATILE
RETURN CASE WHEN skipped IS NULL THEN res_event(event_type, r)
    ELSE res_event_with(res_event(event_type, r), 'policy_override', to_json(skipped)) END;

-- ---- conflicts with buffers ----

-- Whether an active reservation of [rs, re) with buffer rb is in the way of [start_s, end_s)
-- booked with a buffer of gap_s seconds (the room's current one): its own buffered range meets
-- the new one's (the exclusion constraint's test: each keeps its own buffer after it), or it
-- comes itself within gap_s of the new one on either side (the current buffer before the new
-- booking too, and after it against a row booked with a smaller buffer or none: review 15a M1).
-- The second half holds for the writers under the room's lock (every booking function), not
-- under any race as the first: docs/api.md#room-policies.  Inlined, each half is answered by an
-- index (reservations_no_overlap's, reservations_active_span).
CREATE FUNCTION res_in_the_way(rs timestamptz, re timestamptz, rb integer, start_s bigint,
    end_s bigint, gap_s integer)
RETURNS boolean LANGUAGE sql STABLE
RETURN res_busy(rs, re, rb) && res_busy(to_timestamp(start_s), to_timestamp(end_s), gap_s)
    OR tstzrange(rs, re, '[)')
        && tstzrange(to_timestamp(start_s - gap_s), to_timestamp(end_s + gap_s), '[)');

-- The active reservations of room in the way of [start_s, end_s) with a buffer of gap_s
-- seconds (res_in_the_way), except one id, as {start_time, end_time} by start (NULL when none).
CREATE FUNCTION res_conflicts(room bigint, start_s bigint, end_s bigint, except_id bigint,
    gap_s integer)
RETURNS json LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT json_agg(json_build_object(
            'start_time', to_char(r.start_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
            'end_time', to_char(r.end_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
        ORDER BY r.start_time)
    FROM reservations r
    WHERE r.room_id = room AND r.status IN ('confirmed', 'pending') AND r.id <> except_id
    AND res_in_the_way(r.start_time, r.end_time, r.buffer_s, start_s, end_s, gap_s));
END
$$;

-- Migration 004's res_conflicts, for a caller without a buffer (an older binary's).
CREATE OR REPLACE FUNCTION res_conflicts(room bigint, start_s bigint, end_s bigint,
    except_id bigint)
RETURNS json LANGUAGE sql STABLE
RETURN res_conflicts(room, start_s, end_s, except_id, 0);

-- The buffer a booking of room m keeps after it (the room's buffer_minutes, in seconds).
CREATE FUNCTION res_policy_buffer(m rooms) RETURNS integer LANGUAGE sql IMMUTABLE
RETURN coalesce((m.policies->>'buffer_minutes')::int * 60, 0);

-- Every reservation keeps the buffer of the room it is in when it is booked or moved (a
-- snapshot: a later change of the room's rules leaves it): set here so that no writer (the
-- series functions of 006-012, an operator's INSERT) can forget it.
CREATE FUNCTION res_buffer_snapshot() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.room_id <> OLD.room_id OR NEW.start_time <> OLD.start_time
        OR NEW.end_time <> OLD.end_time THEN
        NEW.buffer_s := coalesce((SELECT res_policy_buffer(m) FROM rooms m
            WHERE m.id = NEW.room_id), 0);
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER reservations_buffer BEFORE INSERT OR UPDATE OF room_id, start_time, end_time
    ON reservations FOR EACH ROW EXECUTE FUNCTION res_buffer_snapshot();

-- The conflicts of a series' occurrences (migration 006), with buffers and pending bookings,
-- as res_conflicts finds them for one booking (the buffer of room's current rules).
CREATE OR REPLACE FUNCTION res_series_conflicts(room bigint, ls timestamp[], ss bigint[],
    duration_s bigint, except_ids bigint[], OUT per_occurrence json, OUT slots json,
    OUT hit int[])
LANGUAGE plpgsql STABLE AS $$
DECLARE
    buf integer := coalesce((SELECT res_policy_buffer(m) FROM rooms m WHERE m.id = room), 0);
BEGIN
    WITH hits AS MATERIALIZED (
        SELECT u.i, u.l, u.s, r.id, r.start_time, r.end_time
        FROM unnest(ls, ss) WITH ORDINALITY AS u (l, s, i)
        JOIN reservations r ON r.room_id = room AND r.status IN ('confirmed', 'pending')
        AND r.id <> ALL (except_ids)
        AND res_in_the_way(r.start_time, r.end_time, r.buffer_s, u.s, u.s + duration_s, buf))
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

-- ---- one booking ----

-- What every single write checks once it holds the lock of room m (its row as locked) for
-- [start_s, end_s) of user_id by a caller of role, except reservation except_id: the room can
-- take bookings (room_unavailable), the attendees fit (capacity, when att is not NULL), the
-- room's rules (policy: body = the first problem; with override they are skipped and named in
-- skipped instead), the slot is free with its buffer (conflict: body = the spans); a change
-- that keeps its slot (start_s NULL) only the first two.  outcome NULL: the write may go
-- ahead.  A new check is one more step here, for both writers.
CREATE FUNCTION res_slot_problem(m rooms, user_id bigint, role text, att text[],
    start_s bigint, end_s bigint, now_s bigint, except_id bigint, override boolean,
    OUT outcome text, OUT body text, OUT skipped text[])
LANGUAGE plpgsql STABLE AS $$
DECLARE
    problems json;
BEGIN
    IF m.id IS NULL OR NOT m.active OR m.deleted THEN
        outcome := 'room_unavailable';
        RETURN;
    END IF;
    IF att IS NOT NULL THEN
        body := res_capacity_problem(att, m.capacity);
        IF body IS NOT NULL THEN
            outcome := 'capacity';
            RETURN;
        END IF;
    END IF;
    IF start_s IS NULL THEN
        RETURN;
    END IF;
    problems := res_policy_problems(m, user_id, role, start_s, end_s, now_s, except_id);
    IF problems IS NOT NULL AND override THEN
        skipped := res_policy_names(problems);
    ELSIF problems IS NOT NULL THEN
        outcome := 'policy';
        body := (problems->0)::text;
        RETURN;
    END IF;
    body := res_conflicts(m.id, start_s, end_s, except_id, res_policy_buffer(m))::text;
    IF body IS NOT NULL THEN
        outcome := 'conflict';
    END IF;
END
$$;

DROP FUNCTION res_book_answer(bigint, bigint, text, bigint, timestamp, bigint, timestamp, bigint,
    text, text, text, bigint, bigint, bigint, bigint, text[], text, text, text);
DROP FUNCTION res_change_answer(bigint, bigint, boolean, bigint, text, bigint, timestamp, bigint,
    timestamp, boolean, bigint, text, bigint, bigint, bigint, bigint, text[], boolean, text);
DROP FUNCTION res_book(bigint, bigint, text, bigint, timestamp, bigint, timestamp, bigint, text,
    text, text, bigint, bigint, bigint, bigint, text[], text, text, text);
DROP FUNCTION res_change(bigint, bigint, boolean, bigint, text, bigint, timestamp, bigint,
    timestamp, boolean, bigint, text, bigint, bigint, bigint, bigint, text[], boolean, text);

-- res_book of migration 008 with the room's rules: role is the caller's ("admin" or
-- "employee"), override an admin's ?override=true (the caller checked that it is an admin);
-- skipped: the rules an override skipped (NULL: none).
-- The checks under the room's lock are res_slot_problem's; one more outcome before conflict:
--   policy      body = {policy, field, message}: the first rule of the room the booking breaks
-- A room that requires approval books it as pending (res_policy_status); an override books it
-- whatever the rules and its event names them (policy_override).  The pre-lock check of the
-- times (rules) uses the room's own duration bounds instead of the service's where it has them.
CREATE FUNCTION res_book(room bigint, user_id bigint, purpose text,
    start_s bigint, start_local timestamp, end_s bigint, end_local timestamp,
    issued_ms bigint, topic text, idem_key text, idem_hash text,
    now_s bigint, min_s bigint, max_s bigint, horizon_s bigint,
    attendees text[] DEFAULT '{}', organizer_email text DEFAULT NULL,
    organizer_name text DEFAULT NULL, meeting_url text DEFAULT NULL,
    role text DEFAULT 'employee', override boolean DEFAULT false,
    OUT outcome text, OUT body text, OUT skipped text[])
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    zone text;
    m rooms;
    b record;
    att text[] := coalesce(res_attendees(attendees, organizer_email), '{}');
    r reservations;
BEGIN
    SELECT * INTO outcome, zone FROM res_room_zone(room);
    IF outcome IS NOT NULL THEN
        RETURN;
    END IF;
    start_s := coalesce(start_s, extract(epoch FROM start_local AT TIME ZONE zone)::bigint);
    end_s := coalesce(end_s, extract(epoch FROM end_local AT TIME ZONE zone)::bigint);
    SELECT * INTO b
    FROM res_policy_bounds((SELECT x.policies FROM rooms x WHERE x.id = room), override, min_s,
        max_s);
    IF res_span_breaks_rules(start_s, end_s, now_s, b.lo, b.hi, horizon_s) THEN
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
    SELECT * INTO m FROM rooms x WHERE x.id = room FOR NO KEY UPDATE;
    SELECT * INTO outcome, body, skipped
    FROM res_slot_problem(m, res_book.user_id, role, att, start_s, end_s, now_s, 0, override);
    IF outcome IS NOT NULL THEN
        PERFORM res_release_key(res_book.user_id, idem_key);
        RETURN;
    END IF;
    INSERT INTO reservations (room_id, user_id, purpose, start_time, end_time, status,
        attendees, attendees_key, organizer_email, organizer_name, meeting_url)
    VALUES (room, res_book.user_id, res_book.purpose, to_timestamp(start_s), to_timestamp(end_s),
        res_policy_status(m, role, override), att, res_attendees_key(att),
        res_book.organizer_email, res_book.organizer_name, res_book.meeting_url)
    RETURNING * INTO r;
    INSERT INTO outbox (topic, key, payload)
    VALUES (res_book.topic, r.id::text, res_event_overridden('reservation_created', r, skipped));
    outcome := 'done';
    body := res_json(r)::text;
    PERFORM res_keep_key(res_book.user_id, idem_key, body);
END
$$;

-- res_change of migration 008 with the room's rules, checked (res_slot_problem) when the room
-- or the times change, against the room the reservation ends in, for its owner (quotas) and the
-- caller's role; the reservation itself does not count against a quota.  A pending reservation
-- may change and stays pending, unless it moves into a room that requires no approval (it is
-- confirmed then); a confirmed one moved by an employee into a room that requires approval (or
-- within it) becomes pending again, as a new booking there would be, except an occurrence of a
-- series: refused (policy requires_approval), as a series write there is.
CREATE FUNCTION res_change(id bigint, caller bigint, admin boolean, room bigint, purpose text,
    start_s bigint, start_local timestamp, end_s bigint, end_local timestamp, moved boolean,
    if_match bigint, topic text, now_s bigint, min_s bigint, max_s bigint, horizon_s bigint,
    attendees text[] DEFAULT NULL, online_meeting boolean DEFAULT NULL,
    meeting_url text DEFAULT NULL, role text DEFAULT NULL, override boolean DEFAULT false,
    OUT outcome text, OUT body text, OUT skipped text[])
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    cur reservations;
    locked reservations;
    zone text;
    m rooms;
    b record;
    att text[];
BEGIN
    role := coalesce(role, CASE WHEN admin THEN 'admin' ELSE 'employee' END);
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
    SELECT * INTO b
    FROM res_policy_bounds((SELECT x.policies FROM rooms x WHERE x.id = room), override, min_s,
        max_s);
    IF moved AND res_span_breaks_rules(start_s, end_s, now_s, b.lo, b.hi, horizon_s) THEN
        outcome := 'rules';
        body := json_build_array(start_s, end_s)::text;
        RETURN;
    END IF;
    PERFORM FROM rooms x WHERE x.id IN (room, cur.room_id) ORDER BY x.id FOR NO KEY UPDATE;
    SELECT * INTO m FROM rooms x WHERE x.id = room;
    SELECT * INTO locked FROM reservations r WHERE r.id = res_change.id FOR UPDATE;
    IF NOT FOUND THEN
        outcome := 'not_found';
        RETURN;
    ELSIF locked.room_id <> cur.room_id THEN
        RAISE EXCEPTION 'reservation % moved meanwhile', cur.id
            USING ERRCODE = 'serialization_failure';
    ELSIF locked.status NOT IN ('confirmed', 'pending') THEN
        outcome := 'cancelled';
        RETURN;
    ELSIF locked.version <> coalesce(nullif(if_match, 0), cur.version) THEN
        outcome := 'stale';
        RETURN;
    END IF;
    att := coalesce(res_attendees(attendees, locked.organizer_email), locked.attendees);
    IF moved THEN
        SELECT * INTO outcome, body, skipped
        FROM res_slot_problem(m, locked.user_id, role,
            CASE WHEN attendees IS NOT NULL OR room <> locked.room_id THEN att END,
            start_s, end_s, now_s, cur.id, override);
    ELSE
        -- Purpose, attendees or link only: the slot and the rules stay as they were booked.
        SELECT * INTO outcome, body, skipped
        FROM res_slot_problem(m, locked.user_id, role,
            CASE WHEN attendees IS NOT NULL THEN att END, NULL, NULL, now_s, cur.id, false);
    END IF;
    IF outcome IS NULL AND moved AND locked.series_id IS NOT NULL
        AND res_policy_status(m, role, override) = 'pending' THEN
        -- An occurrence cannot wait for approval (the series functions take confirmed ones
        -- only): refused as a series write into the room is (res_series_policy).
        outcome := 'policy';
        body := res_policy_json('requires_approval', 'room_id',
            'names a room that requires approval: an occurrence of a series cannot move there '
            || 'or within it; book the date on its own')::text;
    END IF;
    IF outcome IS NOT NULL THEN
        RETURN;
    END IF;
    UPDATE reservations r SET room_id = room, purpose = coalesce(res_change.purpose, r.purpose),
        start_time = to_timestamp(start_s), end_time = to_timestamp(end_s),
        status = CASE WHEN NOT moved THEN r.status
            WHEN res_policy_status(m, role, override) = 'pending' THEN 'pending'
            -- Moved into a room that needs no approval: nothing left to approve.
            WHEN NOT coalesce((m.policies->>'requires_approval')::boolean, false)
            THEN 'confirmed' ELSE r.status END,
        attendees = att, attendees_key = res_attendees_key(att),
        meeting_url = CASE WHEN online_meeting IS NULL THEN r.meeting_url
            WHEN online_meeting THEN coalesce(r.meeting_url, res_change.meeting_url) END,
        updated_at = now(), version = r.version + 1
    WHERE r.id = cur.id RETURNING * INTO locked;
    INSERT INTO outbox (topic, key, payload)
    VALUES (res_change.topic, locked.id::text,
        res_event_overridden('reservation_updated', locked, skipped));
    outcome := 'done';
    body := res_json(locked)::text;
END
$$;

-- The opening intervals [hs, he) of room m (Unix seconds) on the local days of its zone that
-- [from_s, to_s) touches; none for a closed day or a room without opening_hours (open all day:
-- nothing to add to the candidates of a window).
CREATE FUNCTION res_policy_open(m rooms, from_s bigint, to_s bigint)
RETURNS TABLE (hs bigint, he bigint) LANGUAGE sql STABLE AS $$
SELECT extract(epoch FROM (d + (i->>0)::interval) AT TIME ZONE m.time_zone)::bigint,
    extract(epoch FROM (d + (i->>1)::interval) AT TIME ZONE m.time_zone)::bigint
FROM generate_series(date_trunc('day', to_timestamp(from_s) AT TIME ZONE m.time_zone),
    to_timestamp(to_s) AT TIME ZONE m.time_zone - interval '1 microsecond', interval '1 day') d
CROSS JOIN LATERAL (SELECT m.policies->'opening_hours'->(ARRAY['mon', 'tue', 'wed', 'thu', 'fri',
    'sat', 'sun'])[extract(isodow FROM d)::int] AS day) x
CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof(x.day) = 'array' THEN x.day
    ELSE '[]' END) i
$$;

-- The starts of windows of len seconds in room m's local day [day_s, day_e) after now_s (and
-- within horizon_s of it), nearest to start_s first (the earlier on a tie), at most n, that
-- the room's buffers and time rules admit: the candidates are res_nearest_windows' (the day's
-- bounds, the next whole minute, the edges of the active reservations, here with their
-- buffers; res: one left out, a change's own) and the opening intervals' bounds, each then
-- checked as a booking is (res_conflicts, res_policy_slot).
-- For one room, with a few reservations a day: a probe of the constraint's index per candidate.
CREATE FUNCTION res_policy_windows(m rooms, res bigint, start_s bigint, len bigint,
    day_s bigint, day_e bigint, now_s bigint, horizon_s bigint, n int)
RETURNS TABLE (s bigint) LANGUAGE sql STABLE AS $$
WITH busy AS (
    SELECT extract(epoch FROM r.start_time)::bigint AS bs,
        extract(epoch FROM r.end_time)::bigint + greatest(r.buffer_s, res_policy_buffer(m)) AS be
    FROM reservations r
    WHERE r.room_id = m.id AND r.status IN ('confirmed', 'pending') AND r.id <> res
    AND res_busy(r.start_time, r.end_time, r.buffer_s)
        && tstzrange(to_timestamp(day_s), to_timestamp(day_e), '[)')),
hours AS (SELECT * FROM res_policy_open(m, day_s, day_e)),
cand AS (
    SELECT DISTINCT c FROM (
        SELECT day_s UNION ALL SELECT day_e - len UNION ALL SELECT (now_s / 60 + 1) * 60
        UNION ALL SELECT be FROM busy UNION ALL SELECT bs - len - res_policy_buffer(m) FROM busy
        UNION ALL SELECT hs FROM hours UNION ALL SELECT he - len FROM hours) x (c)
    WHERE c >= day_s AND c + len <= day_e AND c > now_s AND c <= now_s + horizon_s
    AND c <> start_s)
SELECT c FROM cand
WHERE res_conflicts(m.id, c, c + len, res, res_policy_buffer(m)) IS NULL
AND res_policy_slot(m, c, c + len, now_s) IS NULL
ORDER BY abs(c - start_s), c LIMIT n
$$;

-- details.alternatives of a 409 (res_conflict_alternatives of migration 005) with the rooms'
-- buffers and time rules: up to 3 times in the room's local day (res_policy_windows) and up to
-- 3 other rooms, those of the 12 that res_rooms_ranked offers which their own buffers and time
-- rules admit.  The caller's own rules (access, quotas) are not looked at: the booking answers
-- them.  VOLATILE, after the booking function, as res_conflict_alternatives.
CREATE FUNCTION res_policy_alternatives(res bigint, room bigint, start_s bigint,
    start_local timestamp, end_s bigint, end_local timestamp, now_s bigint, horizon_s bigint)
RETURNS json LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    cur reservations;
    m rooms;
    day record;
BEGIN
    SELECT * INTO cur FROM reservations r WHERE r.id = res;
    SELECT * INTO m FROM rooms x WHERE x.id = coalesce(room, cur.room_id);
    start_s := coalesce(start_s, extract(epoch FROM start_local AT TIME ZONE m.time_zone)::bigint,
        extract(epoch FROM cur.start_time)::bigint);
    end_s := coalesce(end_s, extract(epoch FROM end_local AT TIME ZONE m.time_zone)::bigint,
        extract(epoch FROM cur.end_time)::bigint);
    SELECT * INTO day FROM res_local_day(start_s, m.time_zone);
    RETURN json_build_object(
        'times', (SELECT coalesce(json_agg(json_build_object('start_time', res_utc_text(w.s),
                'end_time', res_utc_text(w.s + end_s - start_s))
                ORDER BY abs(w.s - start_s), w.s), '[]'::json)
            FROM res_policy_windows(m, coalesce(res, 0), start_s, end_s - start_s, day.day_s,
                day.day_e, now_s, horizon_s, 3) w),
        'rooms', (SELECT coalesce(json_agg(o.o ORDER BY o.i), '[]'::json)
            FROM (SELECT x.o, x.i
                  FROM json_array_elements(res_rooms_ranked(m.capacity, m.equipment_key, NULL,
                      NULL, NULL, start_s, end_s, coalesce(res, 0), m.id, true, 12, NULL))
                      WITH ORDINALITY AS x (o, i)
                  JOIN rooms y ON y.id = (x.o->'room'->>'id')::bigint
                  WHERE res_conflicts(y.id, start_s, end_s, coalesce(res, 0),
                      res_policy_buffer(y)) IS NULL
                  AND res_policy_slot(y, start_s, end_s, now_s) IS NULL
                  ORDER BY x.i LIMIT 3) o));
END
$$;

-- res_book_answer of migration 008 with res_book's new parameters and res_policy_alternatives.
CREATE FUNCTION res_book_answer(room bigint, user_id bigint, purpose text,
    start_s bigint, start_local timestamp, end_s bigint, end_local timestamp,
    issued_ms bigint, topic text, idem_key text, idem_hash text,
    now_s bigint, min_s bigint, max_s bigint, horizon_s bigint,
    attendees text[] DEFAULT '{}', organizer_email text DEFAULT NULL,
    organizer_name text DEFAULT NULL, meeting_url text DEFAULT NULL,
    role text DEFAULT 'employee', override boolean DEFAULT false,
    OUT outcome text, OUT body text, OUT alternatives text, OUT skipped text[])
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    BEGIN
        SELECT * INTO outcome, body, skipped FROM res_book(room, user_id, purpose, start_s,
            start_local,
            end_s, end_local, issued_ms, topic, idem_key, idem_hash, now_s, min_s, max_s,
            horizon_s, attendees, organizer_email, organizer_name, meeting_url, role, override);
        IF outcome = 'conflict' THEN
            RAISE SQLSTATE 'RS409';
        END IF;
    EXCEPTION WHEN SQLSTATE 'RS409' THEN
        alternatives := res_policy_alternatives(0, room, start_s, start_local, end_s,
            end_local, now_s, horizon_s)::text;
    END;
END
$$;

-- res_change_answer of migration 008 with res_change's new parameters and
-- res_policy_alternatives.
CREATE FUNCTION res_change_answer(id bigint, caller bigint, admin boolean, room bigint,
    purpose text, start_s bigint, start_local timestamp, end_s bigint, end_local timestamp,
    moved boolean, if_match bigint, topic text, now_s bigint, min_s bigint, max_s bigint,
    horizon_s bigint, attendees text[] DEFAULT NULL, online_meeting boolean DEFAULT NULL,
    meeting_url text DEFAULT NULL, role text DEFAULT NULL, override boolean DEFAULT false,
    OUT outcome text, OUT body text, OUT alternatives text, OUT skipped text[])
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    BEGIN
        SELECT * INTO outcome, body, skipped FROM res_change(id, caller, admin, room, purpose,
            start_s, start_local, end_s, end_local, moved, if_match, topic, now_s, min_s, max_s,
            horizon_s, attendees, online_meeting, meeting_url, role, override);
        IF outcome = 'conflict' THEN
            RAISE SQLSTATE 'RS409';
        END IF;
    EXCEPTION WHEN SQLSTATE 'RS409' THEN
        alternatives := res_policy_alternatives(id, room, start_s, start_local, end_s,
            end_local, now_s, horizon_s)::text;
    END;
    IF outcome = 'done' THEN
        UPDATE reservations r SET exception = true
        WHERE r.id = res_change_answer.id AND r.series_id IS NOT NULL AND NOT r.exception;
    END IF;
END
$$;

-- ---- series ----

-- A reservation and its slot, "id:room:start:end" (Unix seconds).
CREATE FUNCTION res_slot_key(r reservations) RETURNS text LANGUAGE sql STABLE
RETURN r.id || ':' || r.room_id || ':' || extract(epoch FROM r.start_time)::bigint || ':'
    || extract(epoch FROM r.end_time)::bigint;

-- The occurrences of series sid that a series write just placed (not among before, the
-- "id:room:start:end" of the series' active occurrences as they were; NULL: all count as
-- placed), active and after now_s, checked against their room's rules for the series' owner
-- as single bookings (each counting the others against a quota).  A room that requires
-- approval takes no series but an admin's (its occurrences would wait one by one).  NULL, or
-- the problem of the first occurrence that breaks a rule: res_policy_json's object with
-- occurrence_start, start_time and end_time; with override the names of every rule skipped
-- (skipped) instead.
CREATE FUNCTION res_series_policy(sid bigint, before text[], role text, now_s bigint,
    override boolean, OUT problem json, OUT skipped text[])
LANGUAGE plpgsql STABLE AS $$
DECLARE
    o record;
    problems json;
BEGIN
    FOR o IN SELECT r.*, m AS room_row FROM reservations r JOIN rooms m ON m.id = r.room_id
        WHERE r.series_id = sid AND r.status IN ('confirmed', 'pending')
        AND r.start_time > to_timestamp(now_s)
        AND (before IS NULL OR res_slot_key(r) <> ALL (before))
        ORDER BY r.occurrence_start, r.id
    LOOP
        problems := res_policy_problems(o.room_row, o.user_id, role,
            extract(epoch FROM o.start_time)::bigint, extract(epoch FROM o.end_time)::bigint,
            now_s, o.id);
        IF res_policy_status(o.room_row, role, false) = 'pending' THEN
            problems := coalesce(problems::jsonb, '[]'::jsonb)
                || jsonb_build_array(res_policy_json('requires_approval', 'recurrence',
                    'names a room that requires approval: book the dates one by one'));
        END IF;
        IF problems IS NULL OR json_array_length(problems) = 0 THEN
            CONTINUE;
        ELSIF override THEN
            skipped := ARRAY(SELECT DISTINCT x FROM unnest(skipped || res_policy_names(problems)) x
                ORDER BY x);
        ELSE
            problem := ((problems->0)::jsonb || jsonb_build_object(
                'occurrence_start', res_local_text(o.occurrence_start),
                'start_time', res_utc_text(extract(epoch FROM o.start_time)::bigint),
                'end_time', res_utc_text(extract(epoch FROM o.end_time)::bigint)))::json;
            RETURN;
        END IF;
    END LOOP;
END
$$;

-- The active occurrences of series sid as res_slot_key gives them (res_series_policy's before).
CREATE FUNCTION res_series_slots(sid bigint) RETURNS text[] LANGUAGE sql STABLE
RETURN ARRAY(SELECT res_slot_key(r) FROM reservations r
    WHERE r.series_id = sid AND r.status IN ('confirmed', 'pending'));

-- What a checked series write (below) does after pass (1 or 2) of its write, given the
-- problem and the rules skipped (taken) that res_series_policy answered and the names its
-- events carry (named): raises RS422 for a problem (the write is rolled back and answers it),
-- RS428 when the first pass skipped rules (it is done again, its events naming them), and a
-- serialization failure when the second skipped others than the first.
CREATE FUNCTION res_series_overridden(problem json, taken text[], named text[], pass int)
RETURNS void LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF problem IS NOT NULL THEN
        RAISE SQLSTATE 'RS422';
    ELSIF taken IS DISTINCT FROM named AND pass = 1 THEN
        RAISE SQLSTATE 'RS428';
    ELSIF taken IS DISTINCT FROM named THEN
        RAISE EXCEPTION 'the rules a series write skipped changed meanwhile'
            USING ERRCODE = 'serialization_failure';
    END IF;
END
$$;

-- res_book_series (migration 008) with the rooms' rules: the occurrences it booked are checked
-- by res_series_policy under the room's lock it took; a problem rolls the whole call back
-- (nothing is left, the key released) and answers outcome policy with body the problem.  With
-- override, a write that skipped rules is rolled back and done again with their names in
-- res.policy_override, so that its events carry them (outbox_policy_override below): the
-- series functions write the events before the rules can be checked.  Should the second pass
-- skip other rules than the first (a write of the room in between), it fails with a
-- serialization failure rather than publish the wrong names.
CREATE FUNCTION res_book_series_checked(room bigint, user_id bigint, purpose text,
    recurrence json, rrule text, exdates date[], zone text, first_start timestamp,
    starts timestamp[], duration_s bigint, until_s bigint, on_conflict text,
    issued_ms bigint, topic text, idem_key text, idem_hash text,
    now_s bigint, min_s bigint, max_s bigint, horizon_s bigint, max_occurrences int,
    attendees text[], organizer_email text, organizer_name text, meeting_urls text[],
    role text, override boolean, OUT outcome text, OUT body text, OUT skipped text[])
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    problem json;
    taken text[];
    b record;
BEGIN
    -- The room's duration bounds replace the service's (res_policy_bounds); res_series_policy
    -- checks them under the room's lock.
    SELECT * INTO b FROM res_policy_bounds((SELECT x.policies FROM rooms x WHERE x.id = room),
        override, min_s, max_s);
    FOR pass IN 1..2 LOOP
        BEGIN
            SELECT * INTO outcome, body FROM res_book_series(room, user_id, purpose, recurrence,
                rrule, exdates, zone, first_start, starts, duration_s, until_s, on_conflict,
                issued_ms, topic, idem_key, idem_hash, now_s, b.lo, b.hi, horizon_s,
                max_occurrences, attendees, organizer_email, organizer_name, meeting_urls);
            IF outcome = 'done' THEN
                SELECT * INTO problem, taken
                FROM res_series_policy((body::json->>'id')::bigint, NULL, role, now_s, override);
                PERFORM res_series_overridden(problem, taken, skipped, pass);
            END IF;
            EXIT;
        EXCEPTION WHEN SQLSTATE 'RS422' THEN
            outcome := 'policy';
            body := problem::text;
            EXIT;
        WHEN SQLSTATE 'RS428' THEN
            skipped := taken;
            PERFORM set_config('res.policy_override', to_json(skipped)::text, true);
        END;
    END LOOP;
    PERFORM set_config('res.policy_override', '', true);
END
$$;

-- res_change_series (migration 012) with the rooms' rules, as res_book_series_checked: the
-- occurrences the change placed (moved, or added) are checked, those that keep their slot are
-- not (existing bookings stay).
CREATE FUNCTION res_change_series_checked(id bigint, split_at bigint, caller bigint,
    admin boolean, if_match bigint, seen_version bigint, seen_series bigint, room bigint,
    purpose text, regenerate boolean, reset boolean, recurrence json, rrule text,
    exdates date[], zone text, first_start timestamp, duration_s bigint, starts timestamp[],
    until_s bigint, start_s bigint, on_conflict text, topic text, now_s bigint, min_s bigint,
    max_s bigint, horizon_s bigint, max_occurrences int, attendees text[],
    online_meeting boolean, meeting_urls text[], role text, override boolean,
    OUT outcome text, OUT body text, OUT skipped text[])
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    sid bigint := coalesce(id, (SELECT r.series_id FROM reservations r WHERE r.id = split_at));
    before text[] := res_series_slots(sid);
    problem json;
    taken text[];
    b record;
BEGIN
    -- The bounds of the room the series ends in, as res_book_series_checked.
    SELECT * INTO b FROM res_policy_bounds((SELECT x.policies FROM rooms x
            WHERE x.id = coalesce(room, (SELECT y.room_id FROM reservation_series y
                WHERE y.id = sid))),
        override, min_s, max_s);
    FOR pass IN 1..2 LOOP
        BEGIN
            SELECT * INTO outcome, body FROM res_change_series(id, split_at, caller, admin,
                if_match, seen_version, seen_series, room, purpose, regenerate, reset,
                recurrence, rrule, exdates, zone, first_start, duration_s, starts, until_s,
                start_s, on_conflict, topic, now_s, b.lo, b.hi, horizon_s, max_occurrences,
                attendees, online_meeting, meeting_urls);
            IF outcome = 'done' THEN
                SELECT * INTO problem, taken
                FROM res_series_policy((body::json->>'id')::bigint, before, role, now_s,
                    override);
                PERFORM res_series_overridden(problem, taken, skipped, pass);
            END IF;
            EXIT;
        EXCEPTION WHEN SQLSTATE 'RS422' THEN
            outcome := 'policy';
            body := problem::text;
            EXIT;
        WHEN SQLSTATE 'RS428' THEN
            skipped := taken;
            PERFORM set_config('res.policy_override', to_json(skipped)::text, true);
        END;
    END LOOP;
    PERFORM set_config('res.policy_override', '', true);
END
$$;

-- ---- approval ----

-- POST /reservations/{id}/approve (approve) or /reject by an admin: a pending reservation
-- becomes confirmed, or cancelled with cancel_reason rejected (note: the admin's reason, carried
-- by the event only), with its event reservation_approved / reservation_rejected.  outcome:
-- not_found, not_pending (body: its status), started (an approval once the start has passed at
-- now_s, the service's clock: the meeting was not held for it; the releaser cancels it as
-- not_approved), done (body: the reservation).  now_s NULL: no check of the start (an older
-- binary; 020's res_decide_promoting passes the service's clock).  Approved before its start, a reservation of a
-- room with check-in keeps its window: release_at is after the start, so check-in is still
-- open.  The slot was held while pending, so neither needs the room's lock.
CREATE FUNCTION res_decide(id bigint, approve boolean, note text, topic text,
    now_s bigint DEFAULT NULL, OUT outcome text, OUT body text)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    r reservations;
BEGIN
    SELECT * INTO r FROM reservations x WHERE x.id = res_decide.id FOR UPDATE;
    IF NOT FOUND THEN
        outcome := 'not_found';
        RETURN;
    ELSIF r.status <> 'pending' THEN
        outcome := 'not_pending';
        body := r.status;
        RETURN;
    ELSIF approve AND r.start_time <= to_timestamp(now_s) THEN  -- (NULL: not checked)
        outcome := 'started';
        RETURN;
    END IF;
    UPDATE reservations x SET status = CASE WHEN approve THEN 'confirmed' ELSE 'cancelled' END,
        cancel_reason = CASE WHEN approve THEN NULL ELSE 'rejected' END,
        updated_at = now(), version = x.version + 1
    WHERE x.id = r.id RETURNING * INTO r;
    INSERT INTO outbox (topic, key, payload)
    VALUES (res_decide.topic, r.id::text, CASE WHEN approve
        THEN res_event('reservation_approved', r)
        ELSE res_event_with(res_event('reservation_rejected', r), 'reason', to_json(note)) END);
    outcome := 'done';
    body := res_json(r)::text;
END
$$;

-- ---- deletions ----

DROP FUNCTION res_cancel_future(boolean, bigint, text, text);

-- res_cancel_future of migration 006, with pending reservations among those cancelled and
-- "future" read at the caller's clock at (the service's: TEST_CLOCK moves it) instead of the
-- database's.
CREATE FUNCTION res_cancel_future(by_room boolean, owner_id bigint, reason text, topic text,
    at timestamptz DEFAULT now())
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
        WHERE r.status IN ('confirmed', 'pending') AND r.start_time > at
        AND CASE WHEN by_room THEN r.room_id = owner_id ELSE r.user_id = owner_id END)
    ORDER BY x.id FOR UPDATE;
    ending := ARRAY(SELECT x.id FROM reservation_series x
        WHERE x.status = 'active'
        AND CASE WHEN by_room THEN x.room_id = owner_id ELSE x.user_id = owner_id END);
    PERFORM set_config('res.series_op', ',' || array_to_string(ending, ',') || ',', true);
    WITH r AS (
        UPDATE reservations r SET status = 'cancelled', cancel_reason = reason,
            updated_at = now(), version = r.version + 1
        WHERE r.status IN ('confirmed', 'pending') AND r.start_time > at
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
        res_series_event('reservation_series_cancelled', x, at)
    FROM x ORDER BY x.id;
    RETURN n;
END
$$;

-- ---- invitations of pending reservations ----

-- A pending reservation mails no one, its organizer included (docs/api.md#invitations): its
-- mails go out when an admin approves it, as the invitation (every attendee gets the
-- "Invitation" wording); a rejection, or a cancellation while pending, mails nothing, since
-- nothing was sent.  A confirmed reservation that a change makes pending again (an employee
-- moved it into or within a room that requires approval) was in its people's calendars: the
-- organizer and the attendees it had get a CANCEL (reason awaiting_approval), and the
-- invitation again when it is approved.
-- A change of status into or out of pending is noted for the event of that change, as 013
-- notes the attendees before a change (mail_attendees_before, key "p<id>", with the attendees
-- before it: those who had the mails when it was confirmed).
CREATE FUNCTION mail_note_pending() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM mail_settings WHERE enabled) THEN
        DELETE FROM mail_attendees_before WHERE tx <> txid_current();
        INSERT INTO mail_attendees_before (tx, key, attendees)
        VALUES (txid_current(), 'p' || OLD.id, OLD.attendees)
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER reservations_mail_pending BEFORE UPDATE OF status ON reservations
    FOR EACH ROW WHEN ((OLD.status = 'pending') <> (NEW.status = 'pending'))
    EXECUTE FUNCTION mail_note_pending();

-- 015's res_mail_items stays as it is, renamed (as 015 did with 013's): the function below
-- passes its rows on, except for a reservation that is or was pending (above).
ALTER FUNCTION res_mail_items(json) RENAME TO res_mail_items_015;

CREATE FUNCTION res_mail_items(event json)
RETURNS TABLE (addr text, key text, payload json, ord bigint)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    r json := event->'reservation';
    was text[];  -- the attendees before a change into or out of pending (NULL: none)
    m record;
BEGIN
    IF r IS NOT NULL THEN
        was := mail_attendees_taken('p' || (r->>'id'));
    END IF;
    IF r IS NULL OR (r->>'status' <> 'pending' AND was IS NULL) THEN
        RETURN QUERY SELECT * FROM res_mail_items_015(event);
        RETURN;
    END IF;
    FOR m IN SELECT * FROM res_mail_items_015(event) x LOOP  -- (consumes 013's notes)
        IF r->>'status' = 'confirmed' AND m.payload->>'removed' IS NULL THEN
            -- Approved: everyone's first mail of it, the organizer's too (the wording of a
            -- new booking: "added" names them all).
            addr := m.addr;
            key := m.key;
            payload := (m.payload::jsonb || jsonb_build_object('added',
                to_jsonb(res_attendees_key(ARRAY(SELECT json_array_elements_text(
                    r->'attendees')) || (r->>'organizer_email')))))::json;
            ord := m.ord;
            RETURN NEXT;
        ELSIF r->>'status' = 'pending' AND was IS NOT NULL THEN
            -- Confirmed before: a CANCEL to whoever had it, once, over this change's payload.
            RETURN QUERY SELECT x.addr, m.key, (m.payload::jsonb - 'removed' - 'added'
                    || jsonb_build_object('method', 'CANCEL', 'reason', 'awaiting_approval'))::json,
                x.ord
                FROM res_mail_recipients(r->>'organizer_email', was) x;
            was := NULL;
        END IF;
    END LOOP;
END
$$;

-- ---- series written with an override ----

-- The events a series write with ?override=true writes name the rules it skipped
-- ("policy_override", as a single booking's event): the series functions write their events
-- before the rules are checked, so a write that skipped some is done again with their names
-- in res.policy_override (res_series_overriding), which this trigger adds to every event the
-- transaction writes meanwhile.
CREATE FUNCTION res_outbox_override() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.payload := res_event_with(NEW.payload, 'policy_override',
        current_setting('res.policy_override')::json);
    RETURN NEW;
END
$$;

CREATE TRIGGER outbox_policy_override BEFORE INSERT ON outbox
    FOR EACH ROW WHEN (current_setting('res.policy_override', true) <> '')
    EXECUTE FUNCTION res_outbox_override();

-- ---- finding a room, with pending bookings, buffers and the rooms' time rules ----

-- The room search (005: res_room_search, res_rooms_ranked, res_nearest_windows) sees what a
-- booking sees (review 15a M3): a pending reservation is busy, a room is busy within the
-- buffers (res_in_the_way: a reservation's own after it, the room's current one on either side
-- of the window), and a room whose opening hours, durations or advance (res_policy_slot) refuse
-- the window is not offered.  The index of the confirmed spans of all rooms (005) becomes one of
-- the active spans, with the buffers, for the same index-only scan.  A buffer reaches at most
-- 240 minutes (room-service's bound, checked again by the event decoder; the CHECK on
-- buffer_s): the spans read are the window widened by that much.
DROP INDEX reservations_confirmed_span;
CREATE INDEX reservations_active_range ON reservations
    USING gist (tstzrange(start_time, end_time, '[)'))
    INCLUDE (room_id, id, start_time, end_time, buffer_s)
    WHERE status IN ('confirmed', 'pending');

DROP FUNCTION res_rooms_ranked(int, text[], text, int, text, bigint, bigint, bigint, bigint,
    boolean, int, bigint[]);

-- res_rooms_ranked of migration 005: the fitting rooms free for [start_s, end_s) as a booking
-- would find them (above), and, when now_s is given, whose time rules admit it at now_s; best
-- fit first, at most lim, as a JSON array of res_room_item.  among: as in 005 (rooms known to
-- be free by the caller; the rules are still checked).
CREATE FUNCTION res_rooms_ranked(people int, need text[], bldg text, flr int, q text,
    start_s bigint, end_s bigint, except_res bigint, except_room bigint, known_only boolean,
    lim int, among bigint[], now_s bigint DEFAULT NULL)
RETURNS json LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT coalesce(json_agg(res_room_item(f.m, people, need)), '[]'::json) FROM (
        SELECT m FROM res_rooms_fitting(people, need, bldg, flr, q, except_room, known_only) m
        WHERE CASE WHEN among IS NULL THEN m.id NOT IN (
            SELECT r.room_id FROM reservations r JOIN rooms x ON x.id = r.room_id
            WHERE r.status IN ('confirmed', 'pending') AND r.id <> except_res
            AND tstzrange(r.start_time, r.end_time, '[)')
                && tstzrange(to_timestamp(start_s - 14400), to_timestamp(end_s + 14400), '[)')
            AND res_in_the_way(r.start_time, r.end_time, r.buffer_s, start_s, end_s,
                res_policy_buffer(x)))
            ELSE m.id IN (SELECT unnest(among)) END
        AND (now_s IS NULL OR res_policy_slot(m, start_s, end_s, now_s) IS NULL)
        ORDER BY NOT m.details_known, m.capacity,
            cardinality(m.equipment_key) - cardinality(need), lower(m.name), m.id
        LIMIT lim) f);
END
$$;

-- res_nearest_windows of migration 005 with pending reservations busy, each room's busy spans
-- widened by the buffers as res_in_the_way has them ([start - the room's buffer, end + the
-- larger of the reservation's and the room's)), the opening intervals' bounds of the rooms
-- that have opening hours among the starts tried, and a window's rooms (free) only those whose
-- time rules admit it at after_s (the caller's now); a start no room admits is passed over.
-- The widened spans of a room never nest (each starts and ends after the one before), so the
-- gaps between them are found as in 005.
CREATE OR REPLACE FUNCTION res_nearest_windows(ids bigint[], start_s bigint, len bigint,
    day_s bigint, day_e bigint, after_s bigint, until_s bigint, except_res bigint, n int)
RETURNS TABLE (s bigint, e bigint, free bigint[]) LANGUAGE plpgsql STABLE AS $$
BEGIN
RETURN QUERY
-- busy: two branches as in 005 (the constraint's index per room up to 16 rooms, the spans of
-- all rooms beyond).
WITH busy AS MATERIALIZED (
    SELECT r.room_id, extract(epoch FROM r.start_time)::bigint - res_policy_buffer(x) AS bs,
        extract(epoch FROM r.end_time)::bigint
            + greatest(r.buffer_s, res_policy_buffer(x)) AS be
    FROM reservations r JOIN rooms x ON x.id = r.room_id
    WHERE cardinality(ids) <= 16 AND r.status IN ('confirmed', 'pending')
    AND r.room_id = ANY (ids) AND r.id <> except_res
    AND res_busy(r.start_time, r.end_time, r.buffer_s)
        && tstzrange(to_timestamp(day_s - 14400), to_timestamp(day_e + 14400), '[)')
    UNION ALL
    SELECT r.room_id, extract(epoch FROM r.start_time)::bigint - res_policy_buffer(x),
        extract(epoch FROM r.end_time)::bigint + greatest(r.buffer_s, res_policy_buffer(x))
    FROM reservations r JOIN rooms x ON x.id = r.room_id
    WHERE cardinality(ids) > 16 AND r.status IN ('confirmed', 'pending')
    AND r.room_id + 0 IN (SELECT unnest(ids)) AND r.id <> except_res
    AND tstzrange(r.start_time, r.end_time, '[)')
        && tstzrange(to_timestamp(day_s - 14400), to_timestamp(day_e + 14400), '[)')),
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
hours AS (
    SELECT h.hs, h.he FROM rooms x CROSS JOIN LATERAL res_policy_open(x, day_s, day_e) h
    WHERE x.id = ANY (ids) AND x.policies ? 'opening_hours'),
points AS (
    SELECT g.gs AS p, g.ge - len AS hi FROM gaps g
    UNION ALL
    SELECT c, NULL FROM (SELECT day_s UNION ALL SELECT day_e - len
        UNION ALL SELECT (after_s / 60 + 1) * 60
        UNION ALL SELECT be FROM busy UNION ALL SELECT bs - len FROM busy
        UNION ALL SELECT hs FROM hours UNION ALL SELECT he - len FROM hours) AS x (c)
    WHERE c >= day_s AND c + len <= day_e AND c > after_s AND c <= until_s AND c <> start_s),
reach AS (
    SELECT pt.p, pt.hi, max(pt.hi) OVER (ORDER BY pt.p, pt.hi NULLS LAST
        ROWS UNBOUNDED PRECEDING) AS upto
    FROM points pt),
-- The starts free in some room by the gaps, nearest first; each then with the rooms whose gap
-- holds it and whose rules admit it, looked up in that order until n have one (the nested
-- loop keeps the order of its outer side and stops at the limit).
tried AS (
    SELECT DISTINCT t.p FROM reach t WHERE t.hi IS NULL AND t.upto >= t.p),
found AS (
    SELECT o.p, w.free
    FROM (SELECT t.p FROM tried t ORDER BY abs(t.p - start_s), t.p) o
    CROSS JOIN LATERAL (SELECT ARRAY(SELECT g.room_id FROM gaps g JOIN rooms x ON x.id = g.room_id
        WHERE g.gs <= o.p AND g.ge >= o.p + len
        AND res_policy_slot(x, o.p, o.p + len, after_s) IS NULL ORDER BY g.room_id) AS free) w
    WHERE cardinality(w.free) > 0
    LIMIT n)
SELECT f.p, f.p + len, f.free FROM found f ORDER BY abs(f.p - start_s), f.p;
END
$$;

-- res_room_search of migration 005, the rooms' time rules checked at now_s (res_rooms_ranked).
CREATE OR REPLACE FUNCTION res_room_search(people int, equipment json, bldg text, flr int,
    q text, start_s bigint, start_local timestamp, end_s bigint, end_local timestamp, zone text,
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
        greatest(lim, suggest), NULL, now_s);
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
                    lim, w.free, now_s))), '[]'::json)
            FROM res_nearest_windows(ARRAY(SELECT f.id FROM res_rooms_fitting(people, need,
                    bldg, flr, q, 0, false) f), start_s, end_s - start_s, day.day_s,
                day.day_e, now_s, 9223372036854775807, 0, suggest) w)
        END);
END
$$;
