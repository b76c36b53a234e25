-- Changing recurring reservations (docs/api.md#changing-a-series): PUT /reservations/series/{id}
-- and PUT/DELETE /reservations/{id}?scope=this_and_following on an occurrence.  As for a create
-- (006_recurrence.sql), the C side (reservation-service/src/series.c) reads what it needs first
-- (res_series_edit_start), expands the rule, and one call checks and writes the result
-- (res_change_series, res_cancel_following) under the locks single bookings take.

-- What the C side needs before it expands the rule of a change of series id (split false) or of
-- the series of occurrence id (split true: PUT ?scope=this_and_following), with room (NULL:
-- the series') and the times the body gives (NULL: none), at now_s.  problem: not_found,
-- not_occurrence (split on a reservation of no series), cancelled (the series), room_unknown,
-- room_inactive; user_id is set for every problem but not_found, so that 403 comes before the
-- others.  version is the series' version (the occurrence's for a split; series_version the
-- series'), rule the stored rule as text with its EXDATEs (rrule_parse_text), first_start
-- the series' DTSTART and split_start the occurrence's original start (local), zone the zone
-- the occurrences follow (the new room's for a room change), local_start the start the rule
-- is expanded from (the body's start in zone, else split_start, else first_start), given_s
-- the body's start as an instant (NULL without), duration_s the body's (end - start) or the
-- series', today the date in zone.
CREATE FUNCTION res_series_edit_start(id bigint, split boolean, room bigint, start_s bigint,
    start_local timestamp, end_s bigint, end_local timestamp, now_s bigint,
    OUT problem text, OUT user_id bigint, OUT series_id bigint, OUT version int,
    OUT series_version int, OUT rule text, OUT first_start text, OUT split_start text,
    OUT zone text, OUT local_start text, OUT given_s bigint, OUT duration_s bigint,
    OUT today text)
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
END
$$;

-- The problem of reservation occ (a NULL row: none with that id) as the occurrence of a series
-- that caller (admin: anyone) changes or cuts: not_found, forbidden, not_occurrence, else NULL.
CREATE FUNCTION res_occurrence_problem(occ reservations, caller bigint, admin boolean)
RETURNS text LANGUAGE sql IMMUTABLE
RETURN CASE WHEN occ.id IS NULL THEN 'not_found'
    WHEN NOT admin AND occ.user_id <> caller THEN 'forbidden'
    WHEN occ.series_id IS NULL THEN 'not_occurrence' END;

-- PUT /reservations/series/{id} (split_at NULL) or PUT /reservations/{split_at}?scope=
-- this_and_following in one call, by caller (admin: anyone's).  seen_version is the version
-- res_series_edit_start read (the occurrence's for a split), if_match If-Match's (0: none; the
-- version read must then still be current), seen_series the series' version it read (a split
-- computed the new rule from it: another one raises serialization_failure).  room and purpose
-- are NULL where the body keeps them.  regenerate: the occurrences follow a new rule, times or
-- room; then starts are the rule's local starts in zone from its DTSTART first_start
-- (ascending, one per date, past ones too: COUNT counts them), until_s a UTC UNTIL, duration_s
-- their length, start_s the body's start (checked as a single booking's), and recurrence,
-- rrule, exdates the rule when it changes (NULL: kept; a split passes them always).  reset:
-- the body names times or a room, so exceptions take the pattern too.
--
-- The occurrences it touches are the series' confirmed ones that have not started (a split:
-- those from the occurrence's original date on); the rest is history and never changes.
-- Regenerated, each future date of the rule that is not taken (by a past occurrence, or by one
-- cancelled on its own, which stays cancelled) and falls before the series' cut (until_time)
-- is matched by local date to an occurrence: a matched one takes the pattern's times and room
-- (an exception without reset keeps its own, and so does one whose pattern slot has begun: an
-- occurrence postponed past its date's slot), an unmatched date gets a new occurrence, and an
-- occurrence whose date is gone is cancelled (series_changed).  Without regenerate (purpose
-- only) every occurrence keeps its times.  A split first makes the new series (parent_id = the
-- old, the rest as given) and cuts the old one at the occurrence's original start
-- (until_time); the occurrences from that date on, cancelled ones too, move to the new series.
-- A split at an occurrence with no confirmed one of the series before it changes that series
-- instead (it keeps its id and its cut: no empty series is left, and a retried split answers
-- the series the first one made).
--
-- outcome, in the order the checks run: not_found, forbidden, not_occurrence, room_unknown,
-- room_inactive (the room given), cancelled (the series, or a split's occurrence), stale,
-- past (a split at an occurrence that has begun), capacity (another room too small for the
-- attendees and the organizer; body [people, capacity]), empty, too_many, rules, overlap (as
-- res_book_series; rules index 0 is the body's start), room_unavailable, conflict (body as
-- res_book_series'; with 'skip' only when no occurrence to place is free), done (body = the
-- changed series, or the new one, as res_series_answer with skipped).  Rooms (the series' and
-- the new one) are locked FOR NO KEY UPDATE in id order, then the series, then the occurrence,
-- then the series' confirmed future occurrences in id order, as single bookings lock rooms
-- before reservations (a single DELETE or PUT of an occurrence that got there first is waited
-- for and then read, never overwritten); a series moved to another room or an
-- occurrence moved to another series meanwhile raises serialization_failure (the caller reads
-- and expands again).  Conflicts are looked for among everything but the occurrences that move
-- or go; the exclusion constraint stays the guarantee.  Outcomes other than done write nothing.
CREATE FUNCTION res_change_series(id bigint, split_at bigint, caller bigint, admin boolean,
    if_match bigint, seen_version bigint, seen_series bigint, room bigint, purpose text,
    regenerate boolean, reset boolean, recurrence json, rrule text, exdates date[],
    zone text, first_start timestamp, duration_s bigint, starts timestamp[], until_s bigint,
    start_s bigint, on_conflict text, topic text, now_s bigint, min_s bigint, max_s bigint,
    horizon_s bigint, max_occurrences int, OUT outcome text, OUT body text)
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
    -- Another room takes the series (its attendees and organizer, and those of each occurrence
    -- that moves, which may have its own) only when they fit, read under its lock as a single
    -- booking's move (res_capacity_problem and the attendees columns: migration 008; PL/pgSQL
    -- binds them when the function runs).
    IF target <> s.room_id THEN
        body := res_capacity_problem((SELECT a FROM (SELECT s.attendees AS a UNION ALL
            SELECT r.attendees FROM reservations r WHERE r.id = ANY (fut)) x
            ORDER BY cardinality(a) DESC LIMIT 1), cap);
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
            s.id, s.attendees, s.online_meeting, s.organizer_email, s.organizer_name)
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
            status = 'confirmed', exception = false, series_id = t.id, updated_at = now(),
            version = r.version + 1
        FROM u
        WHERE r.id = u.rid AND (r.status = 'confirmed' OR r.id = ANY (moving))
        AND (r.id = ANY (moving) OR (r.room_id, r.start_time, r.end_time, r.occurrence_start,
                r.purpose, r.exception, r.series_id)
            IS DISTINCT FROM (target, to_timestamp(u.s),
                to_timestamp(u.s + res_change_series.duration_s), u.l,
                coalesce(res_change_series.purpose, r.purpose), false, t.id))
        RETURNING r.*)
    INSERT INTO outbox (topic, key, payload)
    SELECT res_change_series.topic, r.id::text, res_event('reservation_updated', r)
    FROM r ORDER BY r.occurrence_start;
    WITH r AS (
        UPDATE reservations r SET purpose = coalesce(res_change_series.purpose, r.purpose),
            series_id = t.id, updated_at = now(), version = r.version + 1
        WHERE r.id = ANY (kept) AND r.status = 'confirmed'
        AND (r.purpose, r.series_id)
            IS DISTINCT FROM (coalesce(res_change_series.purpose, r.purpose), t.id)
        RETURNING *)
    INSERT INTO outbox (topic, key, payload)
    SELECT res_change_series.topic, r.id::text, res_event('reservation_updated', r)
    FROM r ORDER BY r.occurrence_start;
    WITH r AS (
        INSERT INTO reservations (room_id, user_id, purpose, start_time, end_time, series_id,
            occurrence_start)
        SELECT target, t.user_id, t.purpose, to_timestamp(p.s),
            to_timestamp(p.s + t.duration_s), t.id, p.l
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

-- DELETE /reservations/{id}?scope=this_and_following in one call, by caller (admin: anyone's):
-- the occurrence and the later confirmed ones of its series that have not begun (by original
-- date) are cancelled (cancelled_by_user for the owner's own, else cancelled_by_admin), and the
-- series is cut at the occurrence's original start (until_time; version + 1): it stays active
-- (reservation_series_updated) while it has a confirmed occurrence to come, else it ends as a
-- DELETE of the series would (status cancelled, reservation_series_cancelled).  if_match: the
-- occurrence's version (0: any).  outcome: not_found, forbidden, not_occurrence, stale, past
-- (the occurrence has begun), done (also for a series already cancelled, or already cut at or
-- before a cancelled occurrence's date, as by a retry: nothing is written).  An occurrence
-- cancelled on its own is still a point to cut at.  "Begun" and "later" are judged at now_s,
-- the service's clock, as res_change_series does.  The series is locked before the
-- occurrences, as res_cancel_series does.
CREATE FUNCTION res_cancel_following(id bigint, caller bigint, admin boolean, if_match bigint,
    topic text, now_s bigint, OUT outcome text)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    occ reservations;
    s reservation_series;
    reason text;
    now_t timestamptz := to_timestamp(now_s);
BEGIN
    -- A series-level change: its occurrences' events get no mail of their own (009_mail.sql).
    PERFORM set_config('res.series_op', 'on', true);
    occ := (SELECT r FROM reservations r WHERE r.id = res_cancel_following.id);
    outcome := res_occurrence_problem(occ, caller, admin);
    IF outcome IS NOT NULL THEN
        RETURN;
    END IF;
    SELECT * INTO s FROM reservation_series x WHERE x.id = occ.series_id FOR UPDATE;
    SELECT * INTO occ FROM reservations r WHERE r.id = res_cancel_following.id FOR UPDATE;
    IF occ.series_id IS DISTINCT FROM s.id THEN
        RAISE EXCEPTION 'reservation % moved to another series meanwhile', occ.id
            USING ERRCODE = 'serialization_failure';
    ELSIF if_match <> 0 AND occ.version <> if_match THEN
        outcome := 'stale';
        RETURN;
    ELSIF s.status <> 'active' THEN
        outcome := 'done';
        RETURN;
    ELSIF occ.start_time <= now_t OR occ.occurrence_start AT TIME ZONE s.time_zone <= now_t THEN
        outcome := 'past';
        RETURN;
    ELSIF occ.status <> 'confirmed'
        AND s.until_time <= occ.occurrence_start AT TIME ZONE s.time_zone THEN
        outcome := 'done';
        RETURN;
    END IF;
    reason := CASE WHEN s.user_id = caller THEN 'cancelled_by_user' ELSE 'cancelled_by_admin' END;
    PERFORM res_cancel_occurrences(s.id, occ.occurrence_start::date, reason, topic, now_t);
    UPDATE reservation_series x
    SET until_time = least(x.until_time, occ.occurrence_start AT TIME ZONE x.time_zone),
        status = CASE WHEN ended.finished THEN 'cancelled' ELSE x.status END,
        cancel_reason = CASE WHEN ended.finished THEN reason ELSE x.cancel_reason END,
        updated_at = now(), version = x.version + 1
    FROM (SELECT NOT EXISTS (SELECT 1 FROM reservations r WHERE r.series_id = s.id
            AND r.status = 'confirmed' AND r.start_time > now_t) AS finished) ended
    WHERE x.id = s.id RETURNING x.* INTO s;
    INSERT INTO outbox (topic, key, payload)
    VALUES (res_cancel_following.topic, 'series-' || s.id,
        res_series_event(CASE WHEN s.status = 'cancelled' THEN 'reservation_series_cancelled'
            ELSE 'reservation_series_updated' END, s, now_t));
    outcome := 'done';
END
$$;
