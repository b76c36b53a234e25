-- The waitlist (docs/api.md#waitlist, issue 15 P4).  A user waits for a slot of a room that is
-- taken (POST /waitlist); when time of that room frees -- a cancellation, a rejection, a no-show
-- release, a change that shortens or moves a booking, a series cancelled or edited, a room
-- reactivated -- the earliest waiting entries (created_at, id) that now fit are booked in the
-- same transaction (res_waitlist_promote), each checked against all the room's rules for its
-- user and inserted in a subtransaction, so that the exclusion constraint stays the guarantee:
-- an entry that does not fit stays waiting.  Entries expire at their start (the releaser's
-- tick; reads show them expired at once).
--
-- Every UPDATE of reservations is seen by one statement trigger (reservations_waitlist, with
-- transition tables): the time it freed in rooms where someone waits is queued, one row per
-- room (waitlist_freed), and a deferred trigger on the queue promotes at the end of the
-- transaction, so that a series write is complete before its freed time is handed out.  A
-- bulk cancellation in rooms where nobody waits costs one set-based statement (review 15w L1).
--
-- Lock order rooms -> series -> reservations (006) everywhere: the writers that free time lock
-- every room they may free time in first, in id order, and check after the lock that no
-- reservation they may touch left those rooms meanwhile (res_lock_rooms, res_rooms_held:
-- a reservation leaves a room only under that room's lock, so the set is stable once held).
-- The promotion's lock of the room is then one the writer holds already.  The writers that
-- did not lock the rooms first are called through the *_promoting functions here (res_cancel,
-- the single DELETE, and res_release_due, the releaser's batch, are new).  The service's clock
-- and topic reach the promotion through res.waitlist_now_s and res.waitlist_topic
-- (res_waitlist_context, read when the freeing statement runs; without them: the database's
-- clock and the topic the entry was made with).
--
-- Because the writers hold the room, "does anyone wait in this room?" (asked when the freeing
-- statement runs) cannot miss a join: a join takes the room's lock before it reads the slot as
-- taken, so it either committed before the writer locked the room or reads the slot free after
-- the writer committed.  An older binary during a rolling upgrade frees time without the room's
-- lock: its promotions still run, but a join committed between its UPDATE and its COMMIT may be
-- left waiting for a slot that is free, until the room frees time again (docs/operations.md).

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
-- The foreign key's check when reservations are deleted (bench cleanup, any later purge): one
-- probe per row instead of a scan of the waitlist (review 15w M3).
CREATE INDEX waitlist_reservation ON waitlist (reservation_id) WHERE reservation_id IS NOT NULL;
-- The sweeper's walk (res_repo_sweep_waitlist_sql): finished entries, oldest change first.
CREATE INDEX waitlist_finished ON waitlist (updated_at) WHERE status <> 'waiting';

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

-- The most waiting entries one user may hold (docs/api.md#waitlist); the service reads it from
-- the too_many answer of res_waitlist_join, so this is the one place it is defined.
CREATE FUNCTION res_waitlist_max() RETURNS int LANGUAGE sql IMMUTABLE RETURN 20;

-- POST /waitlist in one call, as res_book checks a booking: the times as res_book takes them
-- (seconds or wall-clock text in the room's zone), the rules in seconds, now_s the service's
-- clock.  outcome, in the order the checks run:
--   room_unknown, room_inactive  the room
--   rules       body = [start, end] resolved, for the service to word
--   revoked     the caller's token is void
--   policy      body = {policy, field, message}: a rule of the room that the booking would
--               break whatever else is booked (access, durations, advance, opening hours)
--   duplicate   the caller waits for this room and these times already
--   too_many    body = res_waitlist_max(): the caller has that many waiting entries
--   own         body = the id of the caller's own reservation in the way: waiting for a slot
--               one holds oneself would re-book it when one cancels it (review 15w L2)
--   free        the slot is free now (book it)
--   done        body = the entry
-- The refusals up to too_many need no lock of the room (a client looping on a refused join
-- does not queue the room's bookings: review 15w L10); the caller's own lock (advisory, 7102)
-- keeps two joins at once within the maximum.  The slot is read under the room's lock, as a
-- booking: a freeing write of the room either committed before (the slot reads free) or
-- waits for this entry and promotes it.
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
    mine bigint;
BEGIN
    SELECT * INTO outcome, zone FROM res_room_zone(room);
    IF outcome IS NOT NULL THEN
        RETURN;
    END IF;
    start_s := coalesce(start_s, extract(epoch FROM start_local AT TIME ZONE zone)::bigint);
    end_s := coalesce(end_s, extract(epoch FROM end_local AT TIME ZONE zone)::bigint);
    SELECT * INTO m FROM rooms x WHERE x.id = room;
    SELECT * INTO b FROM res_policy_bounds(m.policies, false, min_s, max_s);
    IF res_span_breaks_rules(start_s, end_s, now_s, b.lo, b.hi, horizon_s) THEN
        outcome := 'rules';
        body := json_build_array(start_s, end_s)::text;
        RETURN;
    END IF;
    IF revoke_guard(res_waitlist_join.user_id, issued_ms) THEN
        outcome := 'revoked';
        RETURN;
    END IF;
    IF NOT m.active OR m.deleted THEN
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
    PERFORM pg_advisory_xact_lock(7102, (res_waitlist_join.user_id % 2147483647)::int);
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
        body := res_waitlist_max()::text;
        RETURN;
    END IF;
    SELECT * INTO m FROM rooms x WHERE x.id = room FOR NO KEY UPDATE;
    IF NOT m.active OR m.deleted THEN
        outcome := 'room_inactive';
        RETURN;
    END IF;
    SELECT r.id INTO mine FROM reservations r
    WHERE r.room_id = room AND r.user_id = res_waitlist_join.user_id
    AND r.status IN ('confirmed', 'pending')
    AND res_in_the_way(r.start_time, r.end_time, r.buffer_s, start_s, end_s,
        res_policy_buffer(m))
    ORDER BY r.start_time LIMIT 1;
    IF mine IS NOT NULL THEN
        outcome := 'own';
        body := mine::text;
        RETURN;
    END IF;
    IF res_conflicts(m.id, start_s, end_s, 0, res_policy_buffer(m)) IS NULL THEN
        outcome := 'free';
        RETURN;
    END IF;
    -- (A waiting entry of the caller whose start has passed unswept never shares the unique
    -- index's key with this one: its start is before now_s, this one's after.)
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

-- Books the waiting entries of room whose time, widened by the room's current buffer on both
-- sides (as res_in_the_way, the join's test of "taken", widens it: review 15c M2), meets freed,
-- at now_s, earliest first (created_at, id), every one that fits: all the room's rules for the
-- entry's user and role as a booking of theirs now would meet them (quotas counted now), then
-- the slot.  Each is inserted in a subtransaction: should a writer that does not take the room's
-- lock hold an overlapping row, the exclusion constraint refuses it and the entry stays
-- waiting.  The booking is an ordinary one (confirmed, or pending where the room requires
-- approval), with its reservation_created event (and so its organizer's invitation mail) and a
-- waitlist_promoted event.  An entry whose user's tokens were revoked since it was made
-- (disabled, deleted, another role) is cancelled instead.  The room is locked before the entries
-- are read (the callers hold it already: lock order rooms -> series -> reservations), so no join
-- of the room can be in flight unseen.  An entry that a DELETE /waitlist/{id} of its owner holds
-- is waited for, not skipped (review 15w L3): the DELETE is one short statement that waits for
-- nothing, and the entry then is cancelled (the next one gets the time) or still waiting (it
-- gets it).  Returns how many it booked.
CREATE FUNCTION res_waitlist_promote(room bigint, freed tstzmultirange, now_s bigint,
    topic text DEFAULT NULL)
RETURNS integer LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    m rooms;
    w waitlist;
    r reservations;
    p record;
    n integer := 0;
BEGIN
    SELECT * INTO m FROM rooms x WHERE x.id = room FOR NO KEY UPDATE;
    IF NOT FOUND OR NOT m.active OR m.deleted THEN
        RETURN 0;
    END IF;
    FOR w IN SELECT * FROM waitlist x WHERE x.room_id = room AND x.status = 'waiting'
        AND x.start_time > to_timestamp(now_s)
        AND tstzrange(x.start_time - res_policy_buffer(m) * interval '1 second',
            x.end_time + res_policy_buffer(m) * interval '1 second', '[)') && freed
        ORDER BY x.created_at, x.id FOR UPDATE
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
        EXCEPTION WHEN exclusion_violation THEN
            -- Taken by a writer outside the room's lock (an older binary): the entry waits on.
            NULL;
        END;
    END LOOP;
    RETURN n;
END
$$;

-- The time freed in this transaction that waits to be handed out at its end: one row per
-- freeing statement and room where someone waited when it ran, with the service's clock and
-- topic of that moment; deleted as it is promoted (waitlist_freed_promote).  A row never
-- outlives its transaction and nothing else reads it, so the table is UNLOGGED (no WAL; a crash
-- empties it, which loses nothing: review 15c L4).
CREATE UNLOGGED TABLE waitlist_freed (
    id      bigserial PRIMARY KEY,
    room_id bigint NOT NULL,
    freed   tstzmultirange NOT NULL,
    now_s   bigint,
    topic   text
);

-- The statement trigger's side: the reservations that held time of their room and hold less
-- of it after the UPDATE (cancelled, released, rejected, shortened, moved) queue the time they
-- held (with their buffers), per room, for the rooms where someone waits.  Nobody waiting:
-- one set-based read of the transition tables and nothing queued.
CREATE FUNCTION res_waitlist_freed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO waitlist_freed (room_id, freed, now_s, topic)
    SELECT o.room_id, range_agg(res_busy(o.start_time, o.end_time, o.buffer_s)),
        nullif(current_setting('res.waitlist_now_s', true), '')::bigint,
        nullif(current_setting('res.waitlist_topic', true), '')
    FROM freeing_old o JOIN freeing_new n ON n.id = o.id
    WHERE o.status IN ('confirmed', 'pending') AND (n.status NOT IN ('confirmed', 'pending')
        OR n.room_id <> o.room_id OR n.start_time > o.start_time
        OR n.end_time < o.end_time OR n.buffer_s < o.buffer_s)
    AND EXISTS (SELECT 1 FROM waitlist w WHERE w.room_id = o.room_id AND w.status = 'waiting')
    GROUP BY o.room_id ORDER BY o.room_id;
    RETURN NULL;
END
$$;

-- Every UPDATE of reservations runs it, check-ins and attendee edits included: PostgreSQL
-- refuses a column list (UPDATE OF status, room_id, ...) on a trigger with transition tables,
-- and a row trigger would cost a bulk cancellation one call per row (review 15w L1).  Measured
-- (review 15c L3, pgbench, one-row UPDATE of checked_in_at per transaction, nobody waiting):
-- 0.40-0.44 ms with the trigger, 0.385-0.394 ms without.
CREATE TRIGGER reservations_waitlist AFTER UPDATE ON reservations
    REFERENCING OLD TABLE AS freeing_old NEW TABLE AS freeing_new
    FOR EACH STATEMENT EXECUTE FUNCTION res_waitlist_freed();

-- A room made active again hands all its time to its waiting entries (time freed while it was
-- inactive was not offered: res_waitlist_promote books nothing in an inactive room).
CREATE FUNCTION res_waitlist_room_back() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM waitlist w WHERE w.room_id = NEW.id AND w.status = 'waiting') THEN
        INSERT INTO waitlist_freed (room_id, freed, now_s, topic)
        VALUES (NEW.id, '{(,)}', NULL, NULL);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER rooms_waitlist AFTER UPDATE OF active ON rooms
    FOR EACH ROW WHEN (NEW.active AND NOT OLD.active AND NOT NEW.deleted)
    EXECUTE FUNCTION res_waitlist_room_back();

-- At the end of the transaction, each queued row is promoted and deleted.
CREATE FUNCTION res_waitlist_flush() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM waitlist_freed f WHERE f.id = NEW.id;
    PERFORM res_waitlist_promote(NEW.room_id, NEW.freed,
        coalesce(NEW.now_s, extract(epoch FROM now())::bigint), NEW.topic);
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER waitlist_freed_promote AFTER INSERT ON waitlist_freed
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION res_waitlist_flush();

-- The service's clock and topic for the promotions of this transaction (res_waitlist_freed).
CREATE FUNCTION res_waitlist_context(now_s bigint, topic text) RETURNS void
LANGUAGE sql VOLATILE AS $$
SELECT set_config('res.waitlist_now_s', coalesce(now_s::text, ''), true),
    set_config('res.waitlist_topic', coalesce(topic, ''), true)
$$;

-- ---- the lock order of the freeing writers ----

-- Locks the rooms ids (FOR NO KEY UPDATE, in id order; ids that name no room are none to
-- lock) and returns ids: what a freeing writer does before it locks a series or a reservation.
CREATE FUNCTION res_lock_rooms(ids bigint[]) RETURNS bigint[] LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM FROM rooms m WHERE m.id = ANY (ids) ORDER BY m.id FOR NO KEY UPDATE;
    RETURN coalesce(ids, '{}');
END
$$;

-- After res_lock_rooms: the rooms the writer needs now (read anew, after the lock) must be
-- among those held, else a reservation moved to another room between the read and the lock,
-- and the writer would take that room after the reservation: a serialization failure (the
-- service tries again, a bounded number of times, then answers 503).  Once held, the set is
-- stable: every writer moves a reservation out of a room only under that room's lock.
-- needed must be read by a statement of its own, after the one that locked: under READ
-- COMMITTED a statement reads with the snapshot it took when it began, so a re-read in the
-- locking statement (a STABLE function, a sub-SELECT) would not see a move committed while it
-- waited for the lock (review 15c M1).
CREATE FUNCTION res_rooms_held(held bigint[], needed bigint[]) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF NOT coalesce(needed, '{}') <@ held THEN
        RAISE EXCEPTION 'a reservation moved to another room meanwhile'
            USING ERRCODE = 'serialization_failure';
    END IF;
END
$$;

-- The rooms of series sid (its own and those of its active occurrences, exceptions moved
-- elsewhere included), and extra (NULL: none): what a series writer may free time in.
CREATE FUNCTION res_series_rooms(sid bigint, extra bigint DEFAULT NULL) RETURNS bigint[]
LANGUAGE sql STABLE AS $$
SELECT ARRAY(SELECT r.room_id FROM reservations r
        WHERE r.series_id = sid AND r.status IN ('confirmed', 'pending')
    UNION SELECT x.room_id FROM reservation_series x WHERE x.id = sid
    UNION SELECT extra WHERE extra IS NOT NULL)
$$;

-- Locks the rooms of series sid (and extra) in the lock order, checked stable.
CREATE FUNCTION res_lock_series_rooms(sid bigint, extra bigint DEFAULT NULL) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    held bigint[] := res_lock_rooms(res_series_rooms(sid, extra));
BEGIN
    PERFORM res_rooms_held(held, res_series_rooms(sid, extra));
END
$$;

-- The rooms where res_cancel_future(by_room, owner_id, ..., at) may cancel: the room itself
-- (by_room), those of the room's or user's future active reservations and of every active
-- occurrence of their active series.
CREATE FUNCTION res_future_rooms(by_room boolean, owner_id bigint, at timestamptz)
RETURNS bigint[] LANGUAGE sql STABLE AS $$
SELECT ARRAY(SELECT owner_id WHERE by_room
    UNION SELECT r.room_id FROM reservations r
        WHERE r.status IN ('confirmed', 'pending') AND r.start_time > at
        AND CASE WHEN by_room THEN r.room_id = owner_id ELSE r.user_id = owner_id END
    UNION SELECT r.room_id FROM reservations r
        WHERE r.status IN ('confirmed', 'pending') AND r.series_id IN (SELECT x.id
            FROM reservation_series x WHERE x.status = 'active'
            AND CASE WHEN by_room THEN x.room_id = owner_id ELSE x.user_id = owner_id END))
$$;

-- Locks the rooms res_cancel_future may cancel in, in the lock order, checked stable: a room
-- deletion calls it before it writes its tombstone on the room's row, so that the room is
-- locked with the others in id order (review 15w M2), not before them.
CREATE FUNCTION res_lock_future_rooms(by_room boolean, owner_id bigint, at timestamptz)
RETURNS void LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    held bigint[] := res_lock_rooms(res_future_rooms(by_room, owner_id, at));
BEGIN
    PERFORM res_rooms_held(held, res_future_rooms(by_room, owner_id, at));
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

-- res_decide (018) with the room locked first (a rejection frees the pending slot), checked
-- after the lock to be still the reservation's (review 15w L6), at the service's clock now_s
-- (the approval's start check and the promotion's) and with its topic.
CREATE FUNCTION res_decide_promoting(id bigint, approve boolean, note text, topic text,
    now_s bigint, OUT outcome text, OUT body text)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    held bigint[];
BEGIN
    PERFORM res_waitlist_context(now_s, topic);
    held := res_lock_rooms(ARRAY(SELECT r.room_id FROM reservations r
        WHERE r.id = res_decide_promoting.id));
    PERFORM res_rooms_held(held, ARRAY(SELECT r.room_id FROM reservations r
        WHERE r.id = res_decide_promoting.id));
    SELECT * INTO outcome, body FROM res_decide(id, approve, note, topic, now_s);
END
$$;

-- res_cancel_series (006) with the rooms of the series' occurrences locked first, at the
-- service's clock for the promotions.
CREATE FUNCTION res_cancel_series_promoting(id bigint, caller bigint, admin boolean,
    if_match bigint, topic text, now_s bigint, OUT outcome text)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM res_waitlist_context(now_s, topic);
    PERFORM res_lock_series_rooms(id);
    outcome := res_cancel_series(id, caller, admin, if_match, topic);
END
$$;

-- res_cancel_following (007) with the rooms of the series' occurrences locked first.
CREATE FUNCTION res_cancel_following_promoting(id bigint, caller bigint, admin boolean,
    if_match bigint, topic text, now_s bigint, OUT outcome text)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM res_waitlist_context(now_s, topic);
    PERFORM res_lock_series_rooms((SELECT o.series_id FROM reservations o
        WHERE o.id = res_cancel_following_promoting.id));
    outcome := res_cancel_following(id, caller, admin, if_match, topic, now_s);
END
$$;

-- res_change_series_checked (018: PUT /reservations/series/{id}, or of an occurrence with a
-- split) with the rooms it may free time in locked first (review 15w M1): the series' own, the
-- target room and those of its occurrences moved elsewhere, which the change may cancel or
-- move.  A caller who may not change the series takes no lock (the call answers forbidden).
CREATE FUNCTION res_change_series_checked_promoting(id bigint, split_at bigint, caller bigint,
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
BEGIN
    PERFORM res_waitlist_context(now_s, topic);
    IF admin OR EXISTS (SELECT 1 FROM reservation_series x WHERE x.id = sid
        AND x.user_id = caller) THEN
        PERFORM res_lock_series_rooms(sid, room);
    END IF;
    SELECT * INTO outcome, body, skipped FROM res_change_series_checked(id, split_at, caller,
        admin, if_match, seen_version, seen_series, room, purpose, regenerate, reset,
        recurrence, rrule, exdates, zone, first_start, duration_s, starts, until_s, start_s,
        on_conflict, topic, now_s, min_s, max_s, horizon_s, max_occurrences, attendees,
        online_meeting, meeting_urls, role, override);
END
$$;

-- res_cancel_future (018: a room or a user deleted) with the rooms of what it cancels locked
-- first (a room deletion has locked them before its tombstone already); the room's or the
-- user's waiting entries are cancelled too.
CREATE FUNCTION res_cancel_future_promoting(by_room boolean, owner_id bigint, reason text,
    topic text, at timestamptz)
RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM res_waitlist_context(extract(epoch FROM at)::bigint, topic);
    PERFORM res_lock_future_rooms(by_room, owner_id, at);
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
-- reservation_released.  It takes no lock by waiting: the due rows are taken with SKIP LOCKED
-- (another replica's, or a writer's), then their rooms with SKIP LOCKED too (a room a writer
-- holds is left for the next tick), and only the rows whose room it holds are released.  Their
-- freed time goes to the rooms' waiting entries (the trigger) at its COMMIT, and that promotion
-- may wait, holding the due rows: for a waiting entry a DELETE /waitlist/{id} holds, or on an
-- in-flight insert of a conflicting reservation.  No cycle of waits follows with the writers of
-- today: a DELETE /waitlist/{id} and the expiry wait for nothing else, and a user deletion
-- locks its waiting entries after its rooms and then cancels only future reservations (a due
-- one has started).  A new writer that locks waitlist entries before reservations must be
-- checked against this (review 15c L1).  Returns how many.
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
