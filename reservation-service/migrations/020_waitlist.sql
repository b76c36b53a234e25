-- The waitlist (docs/api.md#waitlist, issue 15 P4).  A user waits for a slot of a room that is
-- taken (POST /waitlist); when time of that room frees -- a cancellation, a rejection, a no-show
-- release, a change that shortens or moves a booking, a series cancelled or edited -- the
-- earliest waiting entries (created_at, id) that now fit are booked in the same transaction
-- (res_waitlist_promote), each checked against all the room's rules for its user and inserted
-- in a subtransaction, so that the exclusion constraint stays the guarantee: an entry that does
-- not fit stays waiting.  Entries expire at their start (the releaser's tick; reads show them
-- expired at once).
--
-- Every path that frees time is caught by one trigger (reservations_waitlist, deferred to the
-- end of the transaction, so that a series write is complete before its freed time is handed
-- out); the writers lock the rooms first (rooms -> series -> reservations, 006's order), so the
-- promotion's lock of the room is one they hold already.  The writers that did not lock the
-- room before the reservation are called through the *_promoting functions here, which do
-- (with res_cancel, the single DELETE, and res_release_due, the releaser's batch).  The
-- service's clock and the topic reach the trigger through res.waitlist_now_s and
-- res.waitlist_topic (set by those functions; without them: the database's clock and the topic
-- the entry was made with).

CREATE TABLE waitlist (
    id              bigserial PRIMARY KEY,
    room_id         bigint NOT NULL REFERENCES rooms (id),
    user_id         bigint NOT NULL,
    role            text NOT NULL,          -- the caller's role when joining (allowed_roles)
    purpose         text NOT NULL DEFAULT '' CHECK (length(purpose) <= 200),
    start_time      timestamptz NOT NULL,
    end_time        timestamptz NOT NULL CHECK (end_time > start_time),
    status          text NOT NULL DEFAULT 'waiting'
                    CHECK (status IN ('waiting', 'booked', 'expired', 'cancelled')),
    reservation_id  bigint REFERENCES reservations (id),
    organizer_email text,                   -- the token's, for the booking's mail
    organizer_name  text,
    token_issued_ms bigint NOT NULL,        -- a revocation after it voids the entry
    topic           text NOT NULL,          -- of the events, when no writer names one
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'booked') = (reservation_id IS NOT NULL))
);
-- One waiting entry per user, room and times (a second one: 409).
CREATE UNIQUE INDEX waitlist_one_wait ON waitlist (user_id, room_id, start_time, end_time)
    WHERE status = 'waiting';
-- The promotion's walk: the room's waiting entries in the order they came.
CREATE INDEX waitlist_room_waiting ON waitlist (room_id, created_at, id) WHERE status = 'waiting';
CREATE INDEX waitlist_user ON waitlist (user_id, id);
CREATE INDEX waitlist_expiry ON waitlist (start_time) WHERE status = 'waiting';

-- An entry as the API and the events show it, at now_s (the service's clock): a waiting entry
-- whose start has come reads as expired before the sweep marks it.
CREATE FUNCTION res_waitlist_json(w waitlist, now_s bigint) RETURNS json LANGUAGE sql STABLE
RETURN json_build_object('id', w.id, 'room_id', w.room_id, 'user_id', w.user_id,
    'purpose', w.purpose,
    'start_time', res_utc_text(extract(epoch FROM w.start_time)::bigint),
    'end_time', res_utc_text(extract(epoch FROM w.end_time)::bigint),
    'status', CASE WHEN w.status = 'waiting' AND w.start_time <= to_timestamp(now_s)
        THEN 'expired' ELSE w.status END,
    'reservation_id', w.reservation_id,
    'created_at', to_char(w.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'updated_at', to_char(w.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'));

-- The most waiting entries one user may hold (docs/api.md#waitlist).
CREATE FUNCTION res_waitlist_max() RETURNS int LANGUAGE sql IMMUTABLE RETURN 20;

-- POST /waitlist in one call, as res_book checks a booking: the times as res_book takes them
-- (seconds or wall-clock text in the room's zone), the rules in seconds, now_s the service's
-- clock.  outcome, in the order the checks run:
--   room_unknown, room_inactive  the room (unlocked: a validation error)
--   rules       body = [start, end] resolved, for the service to word
--   revoked     the caller's token is void
--   policy      body = {policy, field, message}: a rule of the room that the booking would
--               break whatever else is booked (access, durations, advance, opening hours)
--   duplicate   the caller waits for this room and these times already
--   too_many    the caller has res_waitlist_max() waiting entries
--   free        the slot is free now (book it)
--   done        body = the entry
-- Under the room's lock, as a booking: a freeing write of the room either committed before (the
-- slot reads free) or waits for this entry and promotes it.  The caller's own lock (advisory,
-- 7102) keeps two joins at once within the maximum.
CREATE FUNCTION res_waitlist_join(room bigint, user_id bigint, purpose text,
    start_s bigint, start_local timestamp, end_s bigint, end_local timestamp,
    issued_ms bigint, now_s bigint, min_s bigint, max_s bigint, horizon_s bigint,
    role text, organizer_email text, organizer_name text, topic text,
    OUT outcome text, OUT body text)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    zone text;
    m rooms;
    b record;
    w waitlist;
BEGIN
    SELECT * INTO outcome, zone FROM res_room_zone(room);
    IF outcome IS NOT NULL THEN
        RETURN;
    END IF;
    start_s := coalesce(start_s, extract(epoch FROM start_local AT TIME ZONE zone)::bigint);
    end_s := coalesce(end_s, extract(epoch FROM end_local AT TIME ZONE zone)::bigint);
    SELECT * INTO b
    FROM res_policy_bounds((SELECT x.policies FROM rooms x WHERE x.id = room), false, min_s,
        max_s);
    IF res_span_breaks_rules(start_s, end_s, now_s, b.lo, b.hi, horizon_s) THEN
        outcome := 'rules';
        body := json_build_array(start_s, end_s)::text;
        RETURN;
    END IF;
    IF revoke_guard(res_waitlist_join.user_id, issued_ms) THEN
        outcome := 'revoked';
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(7102, (res_waitlist_join.user_id % 2147483647)::int);
    SELECT * INTO m FROM rooms x WHERE x.id = room FOR NO KEY UPDATE;
    IF m.id IS NULL OR NOT m.active OR m.deleted THEN
        outcome := 'room_inactive';
        RETURN;
    END IF;
    IF m.policies IS NOT NULL THEN
        body := coalesce(res_policy_access(m.policies, res_waitlist_join.user_id, role),
            res_policy_slot(m, start_s, end_s, now_s))::text;
        IF body IS NOT NULL THEN
            outcome := 'policy';
            RETURN;
        END IF;
    END IF;
    IF EXISTS (SELECT 1 FROM waitlist x WHERE x.user_id = res_waitlist_join.user_id
        AND x.room_id = room AND x.status = 'waiting'
        AND x.start_time = to_timestamp(start_s) AND x.end_time = to_timestamp(end_s)) THEN
        outcome := 'duplicate';
        RETURN;
    END IF;
    IF (SELECT count(*) FROM waitlist x WHERE x.user_id = res_waitlist_join.user_id
        AND x.status = 'waiting' AND x.start_time > to_timestamp(now_s)) >= res_waitlist_max()
    THEN
        outcome := 'too_many';
        RETURN;
    END IF;
    IF res_conflicts(m.id, start_s, end_s, 0, res_policy_buffer(m)) IS NULL THEN
        outcome := 'free';
        RETURN;
    END IF;
    -- A waiting entry of the same user that expired unswept would hold the unique index.
    UPDATE waitlist x SET status = 'expired', updated_at = now()
    WHERE x.user_id = res_waitlist_join.user_id AND x.status = 'waiting'
    AND x.start_time <= to_timestamp(now_s);
    INSERT INTO waitlist (room_id, user_id, role, purpose, start_time, end_time,
        organizer_email, organizer_name, token_issued_ms, topic)
    VALUES (room, res_waitlist_join.user_id, role, coalesce(res_waitlist_join.purpose, ''),
        to_timestamp(start_s), to_timestamp(end_s), res_waitlist_join.organizer_email,
        res_waitlist_join.organizer_name, issued_ms, res_waitlist_join.topic)
    RETURNING * INTO w;
    outcome := 'done';
    body := res_waitlist_json(w, now_s)::text;
END
$$;

-- The payload of waitlist_promoted (docs/events.md): the entry and the reservation it got.
CREATE FUNCTION res_waitlist_event(w waitlist, now_s bigint) RETURNS json LANGUAGE sql VOLATILE
RETURN json_build_object('event_type', 'waitlist_promoted', 'event_id', gen_random_uuid(),
    'occurred_at',
    to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'entry', res_waitlist_json(w, now_s), 'reservation_id', w.reservation_id);

-- Books the waiting entries of room whose time (with the room's buffer) meets freed, at now_s,
-- earliest first (created_at, id), every one that fits: all the room's rules for the entry's
-- user and role as a booking of theirs now would meet them (quotas counted now), then the
-- slot.  Each is inserted in a subtransaction: should a writer that does not take the room's
-- lock hold an overlapping row, the exclusion constraint refuses it and the entry stays
-- waiting.  The booking is an ordinary one (confirmed, or pending where the room requires
-- approval), with its reservation_created event (and so its organizer's invitation mail) and a
-- waitlist_promoted event.  An entry whose user's tokens were revoked since it was made
-- (disabled, deleted, another role) is cancelled instead.  Entries another transaction holds
-- (a DELETE /waitlist/{id} in flight) are skipped.  Takes the room's lock (the callers hold it
-- already: lock order rooms -> series -> reservations).  Returns how many it booked.
CREATE FUNCTION res_waitlist_promote(room bigint, freed tstzrange, now_s bigint,
    topic text DEFAULT NULL)
RETURNS integer LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    m rooms;
    w waitlist;
    r reservations;
    p record;
    n integer := 0;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM waitlist x WHERE x.room_id = room AND x.status = 'waiting'
        AND x.start_time > to_timestamp(now_s)) THEN
        RETURN 0;
    END IF;
    SELECT * INTO m FROM rooms x WHERE x.id = room FOR NO KEY UPDATE;
    IF NOT FOUND OR NOT m.active OR m.deleted THEN
        RETURN 0;
    END IF;
    FOR w IN SELECT * FROM waitlist x WHERE x.room_id = room AND x.status = 'waiting'
        AND x.start_time > to_timestamp(now_s)
        AND res_busy(x.start_time, x.end_time, res_policy_buffer(m)) && freed
        ORDER BY x.created_at, x.id FOR UPDATE SKIP LOCKED
    LOOP
        IF EXISTS (SELECT 1 FROM token_revocations t WHERE t.user_id = w.user_id
            AND (extract(epoch FROM t.not_before) * 1000)::bigint > w.token_issued_ms) THEN
            UPDATE waitlist x SET status = 'cancelled', updated_at = now() WHERE x.id = w.id;
            CONTINUE;
        END IF;
        SELECT * INTO p FROM res_slot_problem(m, w.user_id, w.role, NULL,
            extract(epoch FROM w.start_time)::bigint, extract(epoch FROM w.end_time)::bigint,
            now_s, 0, false);
        IF p.outcome IS NOT NULL THEN
            CONTINUE;
        END IF;
        BEGIN
            INSERT INTO reservations (room_id, user_id, purpose, start_time, end_time, status,
                attendees, attendees_key, organizer_email, organizer_name)
            VALUES (room, w.user_id, w.purpose, w.start_time, w.end_time,
                res_policy_status(m, w.role, false), '{}', '{}', w.organizer_email,
                w.organizer_name)
            RETURNING * INTO r;
            UPDATE waitlist x SET status = 'booked', reservation_id = r.id, updated_at = now()
            WHERE x.id = w.id RETURNING * INTO w;
            INSERT INTO outbox (topic, key, payload)
            VALUES (coalesce(res_waitlist_promote.topic, w.topic), r.id::text,
                res_event('reservation_created', r));
            INSERT INTO outbox (topic, key, payload)
            VALUES (coalesce(res_waitlist_promote.topic, w.topic), r.id::text,
                res_waitlist_event(w, now_s));
            n := n + 1;
        EXCEPTION WHEN exclusion_violation OR SQLSTATE 'RS429' THEN
            -- Taken by a writer outside the room's lock, or the organizer's invitations over
            -- their hourly quota: the entry waits on.
            NULL;
        END;
    END LOOP;
    RETURN n;
END
$$;

-- The trigger's side: a reservation that held time of its room and holds less of it after an
-- UPDATE (cancelled, released, rejected, shortened, moved) hands the time it held (with its
-- buffer) to the room's waiting entries, at the end of the transaction.
CREATE FUNCTION res_waitlist_freed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM res_waitlist_promote(OLD.room_id, res_busy(OLD.start_time, OLD.end_time, OLD.buffer_s),
        coalesce(nullif(current_setting('res.waitlist_now_s', true), '')::bigint,
            extract(epoch FROM now())::bigint),
        nullif(current_setting('res.waitlist_topic', true), ''));
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER reservations_waitlist AFTER UPDATE ON reservations
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (OLD.status IN ('confirmed', 'pending') AND (NEW.status NOT IN ('confirmed', 'pending')
        OR NEW.room_id <> OLD.room_id OR NEW.start_time > OLD.start_time
        OR NEW.end_time < OLD.end_time OR NEW.buffer_s < OLD.buffer_s))
    EXECUTE FUNCTION res_waitlist_freed();

-- The service's clock and topic for the promotions of this transaction (res_waitlist_freed).
CREATE FUNCTION res_waitlist_context(now_s bigint, topic text) RETURNS void
LANGUAGE sql VOLATILE AS $$
SELECT set_config('res.waitlist_now_s', coalesce(now_s::text, ''), true),
    set_config('res.waitlist_topic', coalesce(topic, ''), true)
$$;

-- Locks the rooms of the given reservations (FOR NO KEY UPDATE, in id order): what a freeing
-- writer does before it locks a series or a reservation.
CREATE FUNCTION res_lock_rooms_of(ids bigint[]) RETURNS void LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM FROM rooms m
    WHERE m.id IN (SELECT r.room_id FROM reservations r WHERE r.id = ANY (ids))
    ORDER BY m.id FOR NO KEY UPDATE;
END
$$;

-- ---- the freeing writers, in the lock order ----
-- The functions of 006-018 that lock a series or a reservation before its rooms are called
-- through the *_promoting functions below, which lock the rooms first (and set the clock and
-- topic for the promotions); the older functions stay as they were for an older binary during a
-- rolling upgrade (its freeing writes promote too, at the database's clock).

-- DELETE /reservations/{id} (was one statement of repo.c): the room, then the reservation,
-- cancelled by caller (admin: anyone's; if_match 0: any version) with its event.  Answers one
-- row (cancelled: 0 or 1, the status before, may: the caller may), none when there is no such
-- reservation.  Moved to another room between the read and the lock: a serialization failure
-- (the service tries again).
CREATE FUNCTION res_cancel(id bigint, if_match bigint, caller bigint, admin boolean, topic text,
    now_s bigint, OUT cancelled bigint, OUT was text, OUT may boolean)
RETURNS SETOF record LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    cur reservations;
    room bigint := (SELECT r.room_id FROM reservations r WHERE r.id = res_cancel.id);
BEGIN
    IF room IS NULL THEN
        RETURN;
    END IF;
    PERFORM res_waitlist_context(now_s, topic);
    PERFORM FROM rooms m WHERE m.id = room FOR NO KEY UPDATE;
    SELECT * INTO cur FROM reservations r WHERE r.id = res_cancel.id FOR UPDATE;
    IF cur.room_id <> room THEN
        RAISE EXCEPTION 'reservation % moved meanwhile', cur.id
            USING ERRCODE = 'serialization_failure';
    END IF;
    was := cur.status;
    may := admin OR cur.user_id = caller;
    cancelled := 0;
    IF may AND cur.status IN ('confirmed', 'pending')
        AND (if_match = 0 OR cur.version = if_match) THEN
        UPDATE reservations r SET status = 'cancelled', cancel_reason = CASE
            WHEN r.user_id = caller THEN 'cancelled_by_user' ELSE 'cancelled_by_admin' END,
            updated_at = now(), version = r.version + 1
        WHERE r.id = cur.id RETURNING * INTO cur;
        INSERT INTO outbox (topic, key, payload)
        VALUES (res_cancel.topic, cur.id::text, res_event('reservation_cancelled', cur));
        cancelled := 1;
    END IF;
    RETURN NEXT;
END
$$;

-- res_decide (018) with the room locked first: a rejection frees the pending slot.
CREATE FUNCTION res_decide_promoting(id bigint, approve boolean, note text, topic text,
    OUT outcome text, OUT body text)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM res_waitlist_context(NULL, topic);
    PERFORM res_lock_rooms_of(ARRAY[id]);
    SELECT * INTO outcome, body FROM res_decide(id, approve, note, topic);
END
$$;

-- res_cancel_series (006) with the rooms of the series' occurrences locked first.
CREATE FUNCTION res_cancel_series_promoting(id bigint, caller bigint, admin boolean,
    if_match bigint, topic text, OUT outcome text)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM res_waitlist_context(NULL, topic);
    PERFORM res_lock_rooms_of(ARRAY(SELECT r.id FROM reservations r
        WHERE r.series_id = res_cancel_series_promoting.id
        AND r.status IN ('confirmed', 'pending')));
    outcome := res_cancel_series(id, caller, admin, if_match, topic);
END
$$;

-- res_cancel_following (007) with the rooms of the series' occurrences locked first.
CREATE FUNCTION res_cancel_following_promoting(id bigint, caller bigint, admin boolean,
    if_match bigint, topic text, now_s bigint, OUT outcome text)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM res_waitlist_context(now_s, topic);
    PERFORM res_lock_rooms_of(ARRAY(SELECT r.id FROM reservations r
        WHERE r.series_id = (SELECT o.series_id FROM reservations o
            WHERE o.id = res_cancel_following_promoting.id)
        AND r.status IN ('confirmed', 'pending')));
    outcome := res_cancel_following(id, caller, admin, if_match, topic, now_s);
END
$$;

-- res_cancel_future (018: a room or a user deleted) with the rooms of what it cancels locked
-- first; the room's or the user's waiting entries are cancelled too.
CREATE FUNCTION res_cancel_future_promoting(by_room boolean, owner_id bigint, reason text,
    topic text, at timestamptz)
RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM res_waitlist_context(extract(epoch FROM at)::bigint, topic);
    PERFORM res_lock_rooms_of(ARRAY(SELECT r.id FROM reservations r
        WHERE r.status IN ('confirmed', 'pending') AND r.start_time > at
        AND (CASE WHEN by_room THEN r.room_id = owner_id ELSE r.user_id = owner_id END
            OR r.series_id IN (SELECT x.id FROM reservation_series x WHERE x.status = 'active'
                AND CASE WHEN by_room THEN x.room_id = owner_id
                    ELSE x.user_id = owner_id END))));
    UPDATE waitlist w SET status = 'cancelled', updated_at = now()
    WHERE w.status = 'waiting'
    AND CASE WHEN by_room THEN w.room_id = owner_id ELSE w.user_id = owner_id END;
    RETURN res_cancel_future(by_room, owner_id, reason, topic, at);
END
$$;

-- res_change_answer (018) with the service's clock and topic for the promotions (res_change
-- locks the rooms before the reservation already).
CREATE FUNCTION res_change_answer_promoting(id bigint, caller bigint, admin boolean,
    room bigint, purpose text, start_s bigint, start_local timestamp, end_s bigint,
    end_local timestamp, moved boolean, if_match bigint, topic text, now_s bigint,
    min_s bigint, max_s bigint, horizon_s bigint, attendees text[], online_meeting boolean,
    meeting_url text, role text, override boolean,
    OUT outcome text, OUT body text, OUT alternatives text, OUT skipped text[])
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM res_waitlist_context(now_s, topic);
    SELECT * INTO outcome, body, alternatives, skipped FROM res_change_answer(id, caller,
        admin, room, purpose, start_s, start_local, end_s, end_local, moved, if_match, topic,
        now_s, min_s, max_s, horizon_s, attendees, online_meeting, meeting_url, role, override);
END
$$;

-- The no-show releaser's batch (reservation-service/src/releaser.c), at now_s: the due,
-- confirmed, unchecked reservations in release order, at most batch, cancelled as no_show with
-- reservation_released.  It never waits: the due rows are taken with SKIP LOCKED (another
-- replica's, or a writer's), then their rooms with SKIP LOCKED too (a room a writer holds is
-- left for the next tick), and only the rows whose room it holds are released: it holds
-- reservations before rooms, but a transaction that never waits cannot close a cycle of waits.
-- Their freed time goes to the rooms' waiting entries (the trigger).  Returns how many.
CREATE FUNCTION res_release_due(now_s bigint, batch int, topic text) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    due bigint[];
    rooms_held bigint[];
    n bigint;
BEGIN
    PERFORM res_waitlist_context(now_s, topic);
    due := ARRAY(SELECT r.id FROM reservations r
        WHERE r.release_at <= to_timestamp(now_s) AND r.status = 'confirmed'
        AND r.checked_in_at IS NULL AND r.release_at IS NOT NULL
        ORDER BY r.release_at LIMIT batch FOR UPDATE SKIP LOCKED);
    rooms_held := ARRAY(SELECT m.id FROM rooms m
        WHERE m.id IN (SELECT r.room_id FROM reservations r WHERE r.id = ANY (due))
        ORDER BY m.id FOR NO KEY UPDATE SKIP LOCKED);
    WITH r AS (
        UPDATE reservations t SET status = 'cancelled', cancel_reason = 'no_show',
            updated_at = now(), version = t.version + 1
        WHERE t.id = ANY (due) AND t.room_id = ANY (rooms_held)
        RETURNING t.*),
    e AS (
        INSERT INTO outbox (topic, key, payload)
        SELECT res_release_due.topic, r.id::text, res_event('reservation_released', r)
        FROM r ORDER BY r.release_at, r.id)
    SELECT count(*) INTO n FROM r;
    RETURN n;
END
$$;

-- The releaser's other statement: waiting entries whose start has come (at now_s) expire, at
-- most batch at a time.  Returns how many.
CREATE FUNCTION res_waitlist_expire(now_s bigint, batch int) RETURNS bigint
LANGUAGE sql VOLATILE AS $$
WITH x AS (
    UPDATE waitlist w SET status = 'expired', updated_at = now()
    WHERE w.id = ANY (ARRAY(SELECT y.id FROM waitlist y WHERE y.status = 'waiting'
        AND y.start_time <= to_timestamp(now_s) ORDER BY y.start_time LIMIT batch
        FOR UPDATE SKIP LOCKED))
    RETURNING 1)
SELECT count(*) FROM x
$$;
