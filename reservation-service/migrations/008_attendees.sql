-- Attendees, organizer and online meeting links (docs/api.md#attendees-and-online-meetings).
-- The C side validates and de-duplicates the addresses (validate.c) and makes each meeting
-- link's random room name (meeting.c); the booking functions store them with the booking, check
-- the room's capacity under the room's lock, and write them into the JSON of the answer and the
-- events.  The functions of migrations 002-006 get trailing parameters with defaults, so a call
-- with the old argument list (an older binary during a rolling upgrade) books without attendees.

ALTER TABLE reservations
    ADD COLUMN attendees text[] NOT NULL DEFAULT '{}',  -- as given: first spelling, order kept
    ADD COLUMN attendees_key text[] NOT NULL DEFAULT '{}',  -- lower-cased, for ?role=attendee
    ADD COLUMN organizer_email text,   -- from the access token at creation; kept on update
    ADD COLUMN organizer_name text,
    ADD COLUMN meeting_url text;       -- NULL without an online meeting; fixed for life
-- GET /reservations?role=attendee: attendees_key @> ARRAY[lower(email)].
CREATE INDEX reservations_attendees ON reservations USING gin (attendees_key);

ALTER TABLE reservation_series
    ADD COLUMN attendees text[] NOT NULL DEFAULT '{}',
    ADD COLUMN online_meeting boolean NOT NULL DEFAULT false,
    ADD COLUMN organizer_email text,
    ADD COLUMN organizer_name text;

-- res_json with the attendee fields; res_write_columns in reservation-service/src/repo.c writes
-- the same keys in the same order for the reads.
CREATE OR REPLACE FUNCTION res_json(r reservations) RETURNS json LANGUAGE sql STABLE AS $$
SELECT json_build_object('id', r.id, 'room_id', r.room_id, 'user_id', r.user_id,
    'purpose', r.purpose,
    'start_time', to_char(r.start_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
    'end_time', to_char(r.end_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
    'status', r.status, 'cancel_reason', r.cancel_reason,
    'created_at', to_char(r.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'updated_at', to_char(r.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'version', r.version, 'series_id', r.series_id,
    'occurrence_start', res_local_text(r.occurrence_start),
    'attendees', to_json(r.attendees), 'organizer_email', r.organizer_email,
    'organizer_name', r.organizer_name, 'online_meeting', r.meeting_url IS NOT NULL,
    'meeting_url', r.meeting_url)
$$;

-- The attendees a booking keeps of att (validated and de-duplicated by the C side): all but the
-- organizer's own address (any case), who attends anyway.  NULL stays NULL (an update that keeps
-- them).
CREATE FUNCTION res_attendees(att text[], organizer text) RETURNS text[]
LANGUAGE sql IMMUTABLE
RETURN CASE WHEN att IS NULL THEN NULL
    ELSE ARRAY(SELECT a FROM unnest(att) WITH ORDINALITY AS u (a, i)
               WHERE organizer IS NULL OR lower(a) <> lower(organizer) ORDER BY u.i) END;

CREATE FUNCTION res_attendees_key(att text[]) RETURNS text[] LANGUAGE sql IMMUTABLE
RETURN ARRAY(SELECT lower(a) FROM unnest(att) WITH ORDINALITY AS u (a, i) ORDER BY u.i);

-- The capacity check of a booking with att (the attendees kept) in a room of capacity cap (NULL:
-- unknown, no check): NULL when they fit, else the body of outcome 'capacity', [people,
-- capacity] with people = the attendees and the organizer.
CREATE FUNCTION res_capacity_problem(att text[], cap integer) RETURNS text
LANGUAGE sql IMMUTABLE
RETURN CASE WHEN cap IS NOT NULL AND cardinality(att) + 1 > cap
    THEN json_build_array(cardinality(att) + 1, cap)::text END;

DROP FUNCTION res_book_answer(bigint, bigint, text, bigint, timestamp, bigint, timestamp, bigint,
    text, text, text, bigint, bigint, bigint, bigint);
DROP FUNCTION res_change_answer(bigint, bigint, boolean, bigint, text, bigint, timestamp, bigint,
    timestamp, boolean, bigint, text, bigint, bigint, bigint, bigint);
DROP FUNCTION res_book(bigint, bigint, text, bigint, timestamp, bigint, timestamp, bigint, text,
    text, text, bigint, bigint, bigint, bigint);
DROP FUNCTION res_change(bigint, bigint, boolean, bigint, text, bigint, timestamp, bigint,
    timestamp, boolean, bigint, text, bigint, bigint, bigint, bigint);
DROP FUNCTION res_book_series(bigint, bigint, text, json, text, date[], text, timestamp,
    timestamp[], bigint, bigint, text, bigint, text, text, text, bigint, bigint, bigint, bigint,
    int);

-- res_book of migration 006 with attendees (validated, de-duplicated; the organizer's address
-- is dropped here), the organizer's e-mail and name (the token's) and meeting_url (NULL: no
-- online meeting).  One more outcome, after room_unavailable and before conflict:
--   capacity    body = [people, capacity]: the attendees and the organizer exceed the room's
--               capacity, read under the room's lock (a room of unknown capacity: no check)
CREATE FUNCTION res_book(room bigint, user_id bigint, purpose text,
    start_s bigint, start_local timestamp, end_s bigint, end_local timestamp,
    issued_ms bigint, topic text, idem_key text, idem_hash text,
    now_s bigint, min_s bigint, max_s bigint, horizon_s bigint,
    attendees text[] DEFAULT '{}', organizer_email text DEFAULT NULL,
    organizer_name text DEFAULT NULL, meeting_url text DEFAULT NULL,
    OUT outcome text, OUT body text)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    zone text;
    active boolean;
    cap integer;
    att text[] := coalesce(res_attendees(attendees, organizer_email), '{}');
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
    SELECT m.active AND NOT m.deleted, m.capacity INTO active, cap FROM rooms m WHERE m.id = room
    FOR NO KEY UPDATE;
    body := res_capacity_problem(att, cap);
    IF NOT active THEN
        outcome := 'room_unavailable';
    ELSIF body IS NOT NULL THEN
        outcome := 'capacity';
    ELSE
        body := res_conflicts(room, start_s, end_s, 0)::text;
        outcome := CASE WHEN body IS NULL THEN 'done' ELSE 'conflict' END;
    END IF;
    IF outcome <> 'done' THEN
        PERFORM res_release_key(res_book.user_id, idem_key);
        RETURN;
    END IF;
    INSERT INTO reservations (room_id, user_id, purpose, start_time, end_time, attendees,
        attendees_key, organizer_email, organizer_name, meeting_url)
    VALUES (room, res_book.user_id, res_book.purpose, to_timestamp(start_s), to_timestamp(end_s),
        att, res_attendees_key(att), res_book.organizer_email, res_book.organizer_name,
        res_book.meeting_url)
    RETURNING * INTO r;
    INSERT INTO outbox (topic, key, payload)
    VALUES (res_book.topic, r.id::text, res_event('reservation_created', r));
    body := res_json(r)::text;
    PERFORM res_keep_key(res_book.user_id, idem_key, body);
END
$$;

-- res_change of migration 002 with attendees (NULL: kept; else they replace the list, the
-- stored organizer's address dropped) and online_meeting (NULL: kept; true keeps the link there
-- is or takes meeting_url, false clears it).  The capacity is checked again (outcome capacity,
-- as res_book) when the attendees or the room change, against the room the reservation ends in.
CREATE FUNCTION res_change(id bigint, caller bigint, admin boolean, room bigint, purpose text,
    start_s bigint, start_local timestamp, end_s bigint, end_local timestamp, moved boolean,
    if_match bigint, topic text, now_s bigint, min_s bigint, max_s bigint, horizon_s bigint,
    attendees text[] DEFAULT NULL, online_meeting boolean DEFAULT NULL,
    meeting_url text DEFAULT NULL, OUT outcome text, OUT body text)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    cur reservations;
    locked reservations;
    zone text;
    active boolean;
    cap integer;
    att text[];
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
    SELECT bool_or(m.id = room AND m.active AND NOT m.deleted),
        max(m.capacity) FILTER (WHERE m.id = room)
    INTO active, cap
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
    att := coalesce(res_attendees(attendees, locked.organizer_email), locked.attendees);
    IF attendees IS NOT NULL OR room <> locked.room_id THEN
        body := res_capacity_problem(att, cap);
        IF body IS NOT NULL THEN
            outcome := 'capacity';
            RETURN;
        END IF;
    END IF;
    body := res_conflicts(room, start_s, end_s, cur.id)::text;
    IF body IS NOT NULL THEN
        outcome := 'conflict';
        RETURN;
    END IF;
    UPDATE reservations r SET room_id = room, purpose = coalesce(res_change.purpose, r.purpose),
        start_time = to_timestamp(start_s), end_time = to_timestamp(end_s),
        attendees = att, attendees_key = res_attendees_key(att),
        meeting_url = CASE WHEN online_meeting IS NULL THEN r.meeting_url
            WHEN online_meeting THEN coalesce(r.meeting_url, res_change.meeting_url) END,
        updated_at = now(), version = r.version + 1
    WHERE r.id = cur.id RETURNING * INTO locked;
    INSERT INTO outbox (topic, key, payload)
    VALUES (res_change.topic, locked.id::text, res_event('reservation_updated', locked));
    outcome := 'done';
    body := res_json(locked)::text;
END
$$;

-- res_book_answer of migration 005 with res_book's new parameters.
CREATE FUNCTION res_book_answer(room bigint, user_id bigint, purpose text,
    start_s bigint, start_local timestamp, end_s bigint, end_local timestamp,
    issued_ms bigint, topic text, idem_key text, idem_hash text,
    now_s bigint, min_s bigint, max_s bigint, horizon_s bigint,
    attendees text[] DEFAULT '{}', organizer_email text DEFAULT NULL,
    organizer_name text DEFAULT NULL, meeting_url text DEFAULT NULL,
    OUT outcome text, OUT body text, OUT alternatives text)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    BEGIN
        SELECT * INTO outcome, body FROM res_book(room, user_id, purpose, start_s, start_local,
            end_s, end_local, issued_ms, topic, idem_key, idem_hash, now_s, min_s, max_s,
            horizon_s, attendees, organizer_email, organizer_name, meeting_url);
        IF outcome = 'conflict' THEN
            RAISE SQLSTATE 'RS409';
        END IF;
    EXCEPTION WHEN SQLSTATE 'RS409' THEN
        alternatives := res_conflict_alternatives(0, room, start_s, start_local, end_s,
            end_local, now_s, horizon_s)::text;
    END;
END
$$;

-- res_change_answer of migration 006 with res_change's new parameters.
CREATE FUNCTION res_change_answer(id bigint, caller bigint, admin boolean, room bigint,
    purpose text, start_s bigint, start_local timestamp, end_s bigint, end_local timestamp,
    moved boolean, if_match bigint, topic text, now_s bigint, min_s bigint, max_s bigint,
    horizon_s bigint, attendees text[] DEFAULT NULL, online_meeting boolean DEFAULT NULL,
    meeting_url text DEFAULT NULL, OUT outcome text, OUT body text, OUT alternatives text)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    BEGIN
        SELECT * INTO outcome, body FROM res_change(id, caller, admin, room, purpose, start_s,
            start_local, end_s, end_local, moved, if_match, topic, now_s, min_s, max_s,
            horizon_s, attendees, online_meeting, meeting_url);
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

-- res_book_series of migration 006 with attendees, organizer and meeting links: meeting_urls
-- holds one link per start (parallel to starts; NULL: no online meeting), so that every
-- occurrence has its own; every occurrence gets the series' attendees.  Outcome capacity as
-- res_book.
CREATE FUNCTION res_book_series(room bigint, user_id bigint, purpose text, recurrence json,
    rrule text, exdates date[], zone text, first_start timestamp, starts timestamp[],
    duration_s bigint, until_s bigint, on_conflict text,
    issued_ms bigint, topic text, idem_key text, idem_hash text,
    now_s bigint, min_s bigint, max_s bigint, horizon_s bigint, max_occurrences int,
    attendees text[] DEFAULT '{}', organizer_email text DEFAULT NULL,
    organizer_name text DEFAULT NULL, meeting_urls text[] DEFAULT NULL,
    OUT outcome text, OUT body text)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    room_zone text;
    active boolean;
    cap integer;
    att text[] := coalesce(res_attendees(attendees, organizer_email), '{}');
    ls timestamp[];
    ss bigint[];
    n int;
    per_occurrence json;
    slots json;
    hit int[];
    created reservation_series;
BEGIN
    -- A series-level change: its occurrences' events get no mail of their own (009_mail.sql).
    PERFORM set_config('res.series_op', 'on', true);
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
    SELECT m.active AND NOT m.deleted, m.time_zone, m.capacity INTO active, room_zone, cap
    FROM rooms m WHERE m.id = room FOR NO KEY UPDATE;
    IF room_zone IS DISTINCT FROM zone THEN
        RAISE EXCEPTION 'room % changed its time zone meanwhile', room
            USING ERRCODE = 'serialization_failure';
    END IF;
    body := res_capacity_problem(att, cap);
    IF NOT active THEN
        outcome := 'room_unavailable';
    ELSIF body IS NOT NULL THEN
        outcome := 'capacity';
    ELSE
        SELECT * INTO per_occurrence, slots, hit
        FROM res_series_conflicts(room, ls, ss, duration_s, '{}');
        outcome := CASE WHEN hit IS NULL THEN 'done'
            WHEN on_conflict = 'skip' AND cardinality(hit) < n THEN 'done'
            ELSE 'conflict' END;
    END IF;
    IF outcome <> 'done' THEN
        IF outcome = 'conflict' THEN
            body := json_build_object('occurrences', per_occurrence, 'conflicts', slots)::text;
        END IF;
        PERFORM res_release_key(res_book_series.user_id, idem_key);
        RETURN;
    END IF;
    INSERT INTO reservation_series (room_id, user_id, purpose, recurrence, rrule, exdates,
        time_zone, first_start, duration_s, attendees, online_meeting, organizer_email,
        organizer_name)
    VALUES (room, res_book_series.user_id, res_book_series.purpose, res_book_series.recurrence,
        res_book_series.rrule, res_book_series.exdates, zone, res_book_series.first_start,
        res_book_series.duration_s, att, meeting_urls IS NOT NULL,
        res_book_series.organizer_email, res_book_series.organizer_name)
    RETURNING * INTO created;
    WITH r AS (
        INSERT INTO reservations (room_id, user_id, purpose, start_time, end_time, series_id,
            occurrence_start, attendees, attendees_key, organizer_email, organizer_name,
            meeting_url)
        SELECT room, created.user_id, created.purpose, to_timestamp(u.t),
            to_timestamp(u.t + created.duration_s), created.id, u.l, att, res_attendees_key(att),
            created.organizer_email, created.organizer_name, meeting_urls[u.i::int]
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

-- An occurrence that a change of its series adds (res_change_series, migration 007: a new date
-- of the rule) takes the series' attendees and organizer, as those booked with the series did.
-- Its meeting link is not made here (the C side makes links): see docs/api.md.
CREATE FUNCTION res_occurrence_defaults() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.series_id IS NOT NULL AND NEW.organizer_email IS NULL THEN
        SELECT x.attendees, res_attendees_key(x.attendees), x.organizer_email, x.organizer_name
        INTO NEW.attendees, NEW.attendees_key, NEW.organizer_email, NEW.organizer_name
        FROM reservation_series x WHERE x.id = NEW.series_id;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER reservations_occurrence_defaults BEFORE INSERT ON reservations
    FOR EACH ROW WHEN (NEW.series_id IS NOT NULL) EXECUTE FUNCTION res_occurrence_defaults();
