-- Series changes carry attendees and online meetings (docs/api.md#attendees-and-online-meetings,
-- #changing-a-series), and a series shows them.  Migrations 001-011 are never edited: the
-- functions below replace those of 006_recurrence.sql and 007_series_edit.sql (their argument
-- lists grow by trailing parameters with defaults and their answers by trailing columns, so an
-- older binary's calls, by position and by column name, still work during a rolling upgrade).

-- res_series_json of migration 006 with the attendees, the organizer and online_meeting of
-- migration 008's columns: GET /reservations/series/{id} and the series events show them.
CREATE OR REPLACE FUNCTION res_series_json(s reservation_series) RETURNS json
LANGUAGE sql STABLE AS $$
SELECT json_build_object('id', s.id, 'room_id', s.room_id, 'user_id', s.user_id,
    'purpose', s.purpose, 'recurrence', s.recurrence, 'rrule', s.rrule,
    'exdates', to_json(s.exdates), 'time_zone', s.time_zone,
    'first_start', res_local_text(s.first_start), 'duration_seconds', s.duration_s,
    'until_time', to_char(s.until_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
    'parent_id', s.parent_id, 'status', s.status, 'cancel_reason', s.cancel_reason,
    'version', s.version,
    'created_at', to_char(s.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'updated_at', to_char(s.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'attendees', to_json(s.attendees), 'organizer_email', s.organizer_email,
    'organizer_name', s.organizer_name, 'online_meeting', s.online_meeting)
$$;

-- The meeting link of an occurrence that a series change writes, as res_change does for one
-- reservation: cur (its link) kept when online is NULL (not given), kept or else fresh when
-- true, none when false.
CREATE FUNCTION res_occurrence_link(cur text, online boolean, fresh text) RETURNS text
LANGUAGE sql IMMUTABLE
RETURN CASE WHEN online IS NULL THEN cur WHEN online THEN coalesce(cur, fresh) END;

DROP FUNCTION res_series_edit_start(bigint, boolean, bigint, bigint, timestamp, bigint,
    timestamp, bigint);
DROP FUNCTION res_change_series(bigint, bigint, bigint, boolean, bigint, bigint, bigint, bigint,
    text, boolean, boolean, json, text, date[], text, timestamp, bigint, timestamp[], bigint,
    bigint, text, text, bigint, bigint, bigint, bigint, int);

-- res_series_edit_start of migration 007, also answering what a change of attendees and
-- online meeting needs: the series' organizer_email (the address its attendees leave out),
-- online_meeting, and future, the number of its confirmed occurrences that have not begun at
-- now_s (a split: from the occurrence's original date on), which bounds the links a change
-- may give (res_change_series).
CREATE FUNCTION res_series_edit_start(id bigint, split boolean, room bigint, start_s bigint,
    start_local timestamp, end_s bigint, end_local timestamp, now_s bigint,
    OUT problem text, OUT user_id bigint, OUT series_id bigint, OUT version int,
    OUT series_version int, OUT rule text, OUT first_start text, OUT split_start text,
    OUT zone text, OUT local_start text, OUT given_s bigint, OUT duration_s bigint,
    OUT today text, OUT organizer_email text, OUT online_meeting boolean, OUT future int)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    s reservation_series;
    occ reservations;
BEGIN
    series_id := res_series_edit_start.id;
    IF split THEN
        SELECT * INTO occ FROM reservations r WHERE r.id = res_series_edit_start.id;
        IF NOT FOUND THEN
            problem := 'not_found';
            RETURN;
        END IF;
        user_id := occ.user_id;
        version := occ.version;
        IF occ.series_id IS NULL THEN
            problem := 'not_occurrence';
            RETURN;
        END IF;
        series_id := occ.series_id;
        split_start := res_local_text(occ.occurrence_start);
    END IF;
    SELECT * INTO s FROM reservation_series x WHERE x.id = res_series_edit_start.series_id;
    IF NOT FOUND THEN
        problem := 'not_found';
        RETURN;
    END IF;
    IF NOT split THEN
        user_id := s.user_id;
        version := s.version;
    END IF;
    series_version := s.version;
    IF s.status <> 'active' THEN
        problem := 'cancelled';
        RETURN;
    END IF;
    rule := res_series_rule(s);
    first_start := res_local_text(s.first_start);
    zone := s.time_zone;
    IF room IS NOT NULL THEN
        SELECT * INTO problem, zone FROM res_room_zone(room);
        IF problem IS NOT NULL THEN
            RETURN;
        END IF;
    END IF;
    start_s := coalesce(start_s, extract(epoch FROM start_local AT TIME ZONE zone)::bigint);
    end_s := coalesce(end_s, extract(epoch FROM end_local AT TIME ZONE zone)::bigint);
    local_start := coalesce(res_local_text(coalesce(start_local,
        to_timestamp(start_s) AT TIME ZONE zone)), split_start, first_start);
    duration_s := coalesce(end_s - start_s, s.duration_s);
    given_s := start_s;
    today := res_local_date(now_s, zone);
    organizer_email := s.organizer_email;
    online_meeting := s.online_meeting;
    future := (SELECT count(*) FROM reservations r
        WHERE r.series_id = s.id AND r.status = 'confirmed' AND r.start_time > to_timestamp(now_s)
        AND (NOT split OR r.occurrence_start::date >= occ.occurrence_start::date));
END
$$;


-- res_change_series of migration 007 with attendees (NULL: each occurrence keeps its own; else
-- the series and every occurrence the change touches, exceptions too, take them, the
-- organizer's address left out, as a purpose does) and online_meeting (NULL: kept; true: the
-- series and every occurrence it touches get a link, those that have one keep it; false: no
-- link).  meeting_urls: fresh links, one for each occurrence that may need one (res_series_
-- edit_start's future, then one per start): occurrences the change adds take one when the
-- series (after the change) has an online meeting, as those booked with the series did.  One
-- more check: capacity also when the body gives attendees, against the target room and the
-- rooms of the occurrences that keep their times (after the rule's expansion, so after empty
-- and too_many).  Everything else as in migration 007.
CREATE FUNCTION res_change_series(id bigint, split_at bigint, caller bigint, admin boolean,
    if_match bigint, seen_version bigint, seen_series bigint, room bigint, purpose text,
    regenerate boolean, reset boolean, recurrence json, rrule text, exdates date[],
    zone text, first_start timestamp, duration_s bigint, starts timestamp[], until_s bigint,
    start_s bigint, on_conflict text, topic text, now_s bigint, min_s bigint, max_s bigint,
    horizon_s bigint, max_occurrences int, attendees text[] DEFAULT NULL,
    online_meeting boolean DEFAULT NULL, meeting_urls text[] DEFAULT NULL,
    OUT outcome text, OUT body text)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    s reservation_series;    -- the series changed; a split's old series
    t reservation_series;    -- the series that takes the change; a split's new series
    occ reservations;        -- a split's occurrence
    target bigint;           -- the room of the occurrences to place
    room_zone text;
    active boolean;
    cap integer;             -- the target room's capacity (NULL: unknown)
    from_date date;          -- a split: the first local date of the new series
    whole boolean := false;  -- a split at the series' first occurrence: a change of it all
    cut timestamptz;         -- no occurrence at or after it (until_time)
    now_t timestamptz := to_timestamp(now_s);
    fut bigint[];            -- the occurrences the change touches
    taken date[];            -- dates that get no occurrence again
    ls timestamp[];
    ss bigint[];
    p_l timestamp[];         -- the occurrences to place: local starts,
    p_s bigint[];            -- instants,
    p_row bigint[];          -- and the occurrence each takes over (NULL: a new one)
    kept bigint[];           -- occurrences that keep their times
    placed bigint[];         -- occurrences that take a placement
    moving bigint[];         -- placed occurrences that change their slot
    per_occurrence json;
    slots json;
    hit int[];
    att text[];              -- the attendees the change gives (NULL: each keeps its own)
    online boolean;          -- the series' online meeting after the change
BEGIN
    -- A series-level change: its occurrences' events get no mail of their own (009_mail.sql).
    PERFORM set_config('res.series_op', 'on', true);
    IF split_at IS NOT NULL THEN
        occ := (SELECT r FROM reservations r WHERE r.id = split_at);
        outcome := res_occurrence_problem(occ, caller, admin);
        IF outcome IS NOT NULL THEN
            RETURN;
        END IF;
        res_change_series.id := occ.series_id;
    END IF;
    SELECT * INTO s FROM reservation_series x WHERE x.id = res_change_series.id;
    IF NOT FOUND THEN
        outcome := 'not_found';
        RETURN;
    ELSIF NOT admin AND s.user_id <> caller THEN
        outcome := 'forbidden';
        RETURN;
    END IF;
    target := coalesce(room, s.room_id);
    IF room IS NOT NULL THEN
        SELECT * INTO outcome, room_zone FROM res_room_zone(room);
        IF outcome IS NOT NULL THEN
            RETURN;
        END IF;
    END IF;

    SELECT bool_or(m.id = target AND m.active AND NOT m.deleted),
        max(m.time_zone) FILTER (WHERE m.id = target),
        max(m.capacity) FILTER (WHERE m.id = target)
    INTO active, room_zone, cap
    FROM (SELECT * FROM rooms WHERE rooms.id IN (target, s.room_id) ORDER BY rooms.id
          FOR NO KEY UPDATE) m;
    SELECT * INTO t FROM reservation_series x WHERE x.id = s.id FOR UPDATE;
    IF t.room_id <> s.room_id THEN
        RAISE EXCEPTION 'series % moved meanwhile', s.id USING ERRCODE = 'serialization_failure';
    END IF;
    s := t;
    att := res_attendees(res_change_series.attendees, s.organizer_email);
    online := coalesce(res_change_series.online_meeting, s.online_meeting);
    IF split_at IS NOT NULL THEN
        SELECT * INTO occ FROM reservations r WHERE r.id = split_at FOR UPDATE;
        IF occ.series_id IS DISTINCT FROM s.id OR s.version <> seen_series THEN
            RAISE EXCEPTION 'series % changed meanwhile', s.id
                USING ERRCODE = 'serialization_failure';
        ELSIF occ.status <> 'confirmed' OR s.status <> 'active' THEN
            outcome := 'cancelled';
            RETURN;
        ELSIF occ.version <> coalesce(nullif(if_match, 0), seen_version) THEN
            outcome := 'stale';
            RETURN;
        ELSIF occ.start_time <= now_t
            OR occ.occurrence_start AT TIME ZONE s.time_zone <= now_t THEN
            outcome := 'past';
            RETURN;
        END IF;
        from_date := occ.occurrence_start::date;
    ELSIF s.status <> 'active' THEN
        outcome := 'cancelled';
        RETURN;
    ELSIF s.version <> coalesce(nullif(if_match, 0), seen_version) THEN
        outcome := 'stale';
        RETURN;
    END IF;
    IF regenerate AND room IS NOT NULL AND room_zone IS DISTINCT FROM zone THEN
        RAISE EXCEPTION 'room % changed its time zone meanwhile', room
            USING ERRCODE = 'serialization_failure';
    END IF;
    cut := s.until_time;
    -- A split at an occurrence with no confirmed one of its series before it (the first, or
    -- the first of a series split off there by the same request before: a retry) changes the
    -- series from there on, as a PUT of the series would, instead of leaving an empty one.
    whole := split_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM reservations r
        WHERE r.series_id = s.id AND r.status = 'confirmed'
        AND r.occurrence_start::date < from_date);

    -- The occurrences the change may touch are locked after the series (rooms, series,
    -- occurrences: the order of every series writer), so that a DELETE or PUT of one of them
    -- that committed meanwhile is what the statements below read (each reads anew): an
    -- occurrence cancelled on its own stays cancelled, an exception made meanwhile is one.
    PERFORM FROM reservations r
    WHERE r.series_id = s.id AND r.status = 'confirmed' AND r.start_time > now_t
    ORDER BY r.id FOR UPDATE;
    fut := ARRAY(SELECT r.id FROM reservations r
        WHERE r.series_id = s.id AND (from_date IS NULL OR r.occurrence_start::date >= from_date)
        AND r.status = 'confirmed' AND r.start_time > now_t
        ORDER BY r.occurrence_start, r.id);
    -- Another room takes the series (the attendees the change gives, else its own and those of
    -- each occurrence that moves, which may have its own) only when they fit, read under its
    -- lock as a single booking's move.
    IF target <> s.room_id THEN
        body := res_capacity_problem(coalesce(att, (SELECT a FROM (SELECT s.attendees AS a
            UNION ALL SELECT r.attendees FROM reservations r WHERE r.id = ANY (fut)) x
            ORDER BY cardinality(a) DESC LIMIT 1)), cap);
        IF body IS NOT NULL THEN
            outcome := 'capacity';
            RETURN;
        END IF;
    END IF;
    kept := fut;
    p_l := '{}';
    p_s := '{}';
    p_row := '{}';
    IF regenerate THEN
        taken := ARRAY(SELECT DISTINCT r.occurrence_start::date FROM reservations r
            WHERE r.series_id = s.id
            AND (from_date IS NULL OR r.occurrence_start::date >= from_date)
            AND (r.start_time <= now_t OR r.status = 'cancelled'
                 AND r.cancel_reason IN ('cancelled_by_user', 'cancelled_by_admin')));
        SELECT * INTO ls, ss, outcome
        FROM res_series_instants(starts, zone, until_s, max_occurrences);
        IF outcome IS NOT NULL THEN
            RETURN;
        ELSIF start_s IS NOT NULL
            AND res_span_breaks_rules(start_s, start_s + duration_s, now_s, min_s, max_s,
                horizon_s) THEN
            outcome := 'rules';
            body := json_build_array(0, start_s, start_s + duration_s, NULL)::text;
            RETURN;
        END IF;
        -- The dates, each with the future occurrence of that date it takes over.  A date whose
        -- slot has begun counts only when it has such an occurrence (an exception moved to a
        -- later time): that one keeps its times, as one the pattern no longer moves.
        WITH d AS (
            SELECT u.l, u.s, (SELECT r.id FROM reservations r
                    WHERE r.id = ANY (fut) AND r.occurrence_start::date = u.l::date
                    ORDER BY r.id LIMIT 1) AS rid
            FROM unnest(ls, ss) AS u (l, s)
            WHERE u.l::date <> ALL (taken)
            AND (from_date IS NULL OR u.l::date >= from_date)
            AND (cut IS NULL OR to_timestamp(u.s) < cut
                 AND u.l::date < (cut AT TIME ZONE zone)::date)),
        k AS (
            SELECT d.*, d.rid IS NOT NULL AND (d.s <= now_s OR NOT reset
                AND (SELECT r.exception FROM reservations r WHERE r.id = d.rid)) AS keep
            FROM d WHERE d.s > now_s OR d.rid IS NOT NULL)
        SELECT coalesce(array_agg(k.l ORDER BY k.l) FILTER (WHERE NOT k.keep), '{}'),
            coalesce(array_agg(k.s ORDER BY k.l) FILTER (WHERE NOT k.keep), '{}'),
            coalesce(array_agg(k.rid ORDER BY k.l) FILTER (WHERE NOT k.keep), '{}'),
            coalesce(array_agg(k.rid) FILTER (WHERE k.keep), '{}')
        INTO p_l, p_s, p_row, kept
        FROM k;
    END IF;

    -- New attendees go to every occurrence the change touches: they must fit the room each ends
    -- in, the target or the room an occurrence that keeps its times keeps (an exception moved
    -- elsewhere).  The smallest room that is too small is named.
    IF att IS NOT NULL THEN
        SELECT res_capacity_problem(att, m.capacity) INTO body
        FROM rooms m
        WHERE (m.id = target OR m.id IN (SELECT r.room_id FROM reservations r
                WHERE r.id = ANY (kept)))
        AND res_capacity_problem(att, m.capacity) IS NOT NULL
        ORDER BY m.capacity LIMIT 1;
        IF body IS NOT NULL THEN
            outcome := 'capacity';
            RETURN;
        END IF;
    END IF;
    -- The links: meeting_urls[k] for the k-th occurrence of fut, meeting_urls[cardinality(fut)
    -- + i] for the i-th to place; the caller counted them from res_series_edit_start (a list
    -- too short means the series changed since: read again).  Without meeting_urls (an older
    -- caller) added occurrences get no link, as before.
    IF online AND meeting_urls IS NOT NULL
        AND cardinality(meeting_urls) < cardinality(fut) + cardinality(p_l) THEN
        RAISE EXCEPTION 'series % has more occurrences than links', s.id
            USING ERRCODE = 'serialization_failure';
    END IF;

    -- Index 0 is the body's start (above): the occurrences to place count from 1.
    SELECT * INTO outcome, body
    FROM res_series_check(p_l, p_s, duration_s, 1, now_s, min_s, max_s, horizon_s);
    IF outcome IS NOT NULL THEN
        RETURN;
    END IF;
    IF cardinality(p_s) > 0 THEN
        IF NOT coalesce(active, false) THEN
            outcome := 'room_unavailable';
            RETURN;
        END IF;
        -- What moves or goes makes room; what keeps its times stays in the way.
        SELECT * INTO per_occurrence, slots, hit
        FROM res_series_conflicts(target, p_l, p_s, duration_s,
            ARRAY(SELECT f FROM unnest(fut) f WHERE f <> ALL (kept)));
        IF hit IS NOT NULL AND (on_conflict <> 'skip' OR cardinality(hit) = cardinality(p_s))
        THEN
            outcome := 'conflict';
            body := json_build_object('occurrences', per_occurrence, 'conflicts', slots)::text;
            RETURN;
        END IF;
    END IF;
    placed := array_remove(ARRAY(SELECT u.rid FROM unnest(p_row) WITH ORDINALITY AS u (rid, i)
        WHERE u.i <> ALL (coalesce(hit, '{}'))), NULL);

    IF split_at IS NOT NULL AND NOT whole THEN
        -- The new series keeps the attendees, organizer and online meeting (migration 008's
        -- columns): the occurrences it adds take them from it.
        INSERT INTO reservation_series (room_id, user_id, purpose, recurrence, rrule, exdates,
            time_zone, first_start, duration_s, until_time, parent_id, attendees,
            online_meeting, organizer_email, organizer_name)
        VALUES (target, s.user_id, coalesce(res_change_series.purpose, s.purpose),
            res_change_series.recurrence, res_change_series.rrule, res_change_series.exdates,
            zone, res_change_series.first_start, res_change_series.duration_s, s.until_time,
            s.id, coalesce(att, s.attendees), online, s.organizer_email, s.organizer_name)
        RETURNING * INTO t;
        UPDATE reservation_series x
        SET until_time = least(x.until_time, occ.occurrence_start AT TIME ZONE x.time_zone),
            updated_at = now(), version = x.version + 1
        WHERE x.id = s.id RETURNING * INTO s;
    ELSE
        UPDATE reservation_series x SET room_id = target,
            purpose = coalesce(res_change_series.purpose, x.purpose),
            recurrence = coalesce(res_change_series.recurrence, x.recurrence),
            rrule = coalesce(res_change_series.rrule, x.rrule),
            exdates = coalesce(res_change_series.exdates, x.exdates),
            time_zone = coalesce(res_change_series.zone, x.time_zone),
            first_start = coalesce(res_change_series.first_start, x.first_start),
            duration_s = coalesce(res_change_series.duration_s, x.duration_s),
            attendees = coalesce(att, x.attendees), online_meeting = online,
            updated_at = now(), version = x.version + 1
        WHERE x.id = s.id RETURNING * INTO t;
    END IF;

    -- Rows in the order that frees slots before taking them: the exclusion constraint is
    -- checked row by row.  The occurrences that move leave their old slots first (confirmed
    -- again with their new slot by the next UPDATE, with no event in between), so that two of
    -- them trading or crossing slots (an overnight one moved across midnight) never meet.
    -- status = 'confirmed' guards what was read under the locks.
    WITH r AS (
        UPDATE reservations r SET status = 'cancelled', cancel_reason = 'series_changed',
            series_id = t.id, updated_at = now(), version = r.version + 1
        WHERE r.id = ANY (fut) AND r.id <> ALL (kept) AND r.id <> ALL (placed)
        AND r.status = 'confirmed'
        RETURNING *)
    INSERT INTO outbox (topic, key, payload)
    SELECT res_change_series.topic, r.id::text, res_event('reservation_cancelled', r)
    FROM r ORDER BY r.occurrence_start;
    WITH u AS (
        SELECT p.s, p.rid FROM unnest(p_s, p_row) WITH ORDINALITY AS p (s, rid, i)
        WHERE p.rid IS NOT NULL AND p.i <> ALL (coalesce(hit, '{}'))),
    m AS (
        UPDATE reservations r SET status = 'cancelled'
        FROM u
        WHERE r.id = u.rid AND r.status = 'confirmed'
        AND (r.room_id, r.start_time, r.end_time) IS DISTINCT FROM (target, to_timestamp(u.s),
            to_timestamp(u.s + res_change_series.duration_s))
        RETURNING r.id)
    SELECT coalesce(array_agg(m.id), '{}') INTO moving FROM m;
    WITH u AS (
        SELECT p.l, p.s, p.rid FROM unnest(p_l, p_s, p_row) WITH ORDINALITY AS p (l, s, rid, i)
        WHERE p.rid IS NOT NULL AND p.i <> ALL (coalesce(hit, '{}'))),
    r AS (
        UPDATE reservations r SET room_id = target, start_time = to_timestamp(u.s),
            end_time = to_timestamp(u.s + res_change_series.duration_s),
            occurrence_start = u.l, purpose = coalesce(res_change_series.purpose, r.purpose),
            attendees = coalesce(att, r.attendees),
            attendees_key = res_attendees_key(coalesce(att, r.attendees)),
            meeting_url = res_occurrence_link(r.meeting_url, res_change_series.online_meeting,
                meeting_urls[array_position(fut, r.id)]),
            status = 'confirmed', exception = false, series_id = t.id, updated_at = now(),
            version = r.version + 1
        FROM u
        WHERE r.id = u.rid AND (r.status = 'confirmed' OR r.id = ANY (moving))
        AND (r.id = ANY (moving) OR (r.room_id, r.start_time, r.end_time, r.occurrence_start,
                r.purpose, r.exception, r.series_id, r.attendees, r.meeting_url)
            IS DISTINCT FROM (target, to_timestamp(u.s),
                to_timestamp(u.s + res_change_series.duration_s), u.l,
                coalesce(res_change_series.purpose, r.purpose), false, t.id,
                coalesce(att, r.attendees), res_occurrence_link(r.meeting_url, res_change_series.online_meeting,
                    meeting_urls[array_position(fut, r.id)])))
        RETURNING r.*)
    INSERT INTO outbox (topic, key, payload)
    SELECT res_change_series.topic, r.id::text, res_event('reservation_updated', r)
    FROM r ORDER BY r.occurrence_start;
    WITH r AS (
        UPDATE reservations r SET purpose = coalesce(res_change_series.purpose, r.purpose),
            attendees = coalesce(att, r.attendees),
            attendees_key = res_attendees_key(coalesce(att, r.attendees)),
            meeting_url = res_occurrence_link(r.meeting_url, res_change_series.online_meeting,
                meeting_urls[array_position(fut, r.id)]),
            series_id = t.id, updated_at = now(), version = r.version + 1
        WHERE r.id = ANY (kept) AND r.status = 'confirmed'
        AND (r.purpose, r.series_id, r.attendees, r.meeting_url)
            IS DISTINCT FROM (coalesce(res_change_series.purpose, r.purpose), t.id,
                coalesce(att, r.attendees), res_occurrence_link(r.meeting_url, res_change_series.online_meeting,
                    meeting_urls[array_position(fut, r.id)]))
        RETURNING *)
    INSERT INTO outbox (topic, key, payload)
    SELECT res_change_series.topic, r.id::text, res_event('reservation_updated', r)
    FROM r ORDER BY r.occurrence_start;
    WITH r AS (
        INSERT INTO reservations (room_id, user_id, purpose, start_time, end_time, series_id,
            occurrence_start, attendees, attendees_key, organizer_email, organizer_name,
            meeting_url)
        SELECT target, t.user_id, t.purpose, to_timestamp(p.s),
            to_timestamp(p.s + t.duration_s), t.id, p.l, t.attendees,
            res_attendees_key(t.attendees), t.organizer_email, t.organizer_name,
            CASE WHEN t.online_meeting THEN meeting_urls[cardinality(fut) + p.i::int] END
        FROM unnest(p_l, p_s, p_row) WITH ORDINALITY AS p (l, s, rid, i)
        WHERE p.rid IS NULL AND p.i <> ALL (coalesce(hit, '{}'))
        RETURNING *)
    INSERT INTO outbox (topic, key, payload)
    SELECT res_change_series.topic, r.id::text, res_event('reservation_created', r)
    FROM r ORDER BY r.occurrence_start;

    IF split_at IS NOT NULL AND NOT whole THEN
        -- The cancelled occurrences of the dates it takes over are its history: they move
        -- without an event (a cancelled reservation no longer changes).
        UPDATE reservations r SET series_id = t.id
        WHERE r.series_id = s.id AND r.occurrence_start::date >= from_date
        AND r.status = 'cancelled';
        INSERT INTO outbox (topic, key, payload)
        VALUES (res_change_series.topic, 'series-' || s.id,
            res_series_event('reservation_series_updated', s, now_t));
        INSERT INTO outbox (topic, key, payload)
        VALUES (res_change_series.topic, 'series-' || t.id,
            res_series_event('reservation_series_created', t, now_t));
    ELSE
        INSERT INTO outbox (topic, key, payload)
        VALUES (res_change_series.topic, 'series-' || t.id,
            res_series_event('reservation_series_updated', t, now_t));
    END IF;
    outcome := 'done';
    body := res_series_answer(t, CASE WHEN on_conflict = 'skip'
        THEN coalesce(per_occurrence, '[]') ELSE '[]' END);
END
$$;

