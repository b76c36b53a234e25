-- Check-in and the release of no-shows (docs/api.md#check-in, issue 15 P3).  A reservation of a
-- room that requires check-in when it is booked keeps a snapshot of its window, as it keeps its
-- buffer (018): check-in is open in [check_in_from, release_at), release_at being
-- release_after_minutes after the start but never after the end; a confirmed reservation not
-- checked in by release_at is released by the releaser (reservation-service/src/releaser.c):
-- cancelled with cancel_reason 'no_show'.  Both NULL: the room did not require check-in when it
-- was booked (a later change of the room's rules leaves the reservation as it is).  The same
-- releaser cancels a pending reservation that reached its start without an approval
-- (cancel_reason 'not_approved'): it stops holding the slot.  All the state is in these
-- columns: a restart or a second replica loses and repeats nothing.
ALTER TABLE reservations
    ADD COLUMN check_in_from timestamptz,
    ADD COLUMN release_at timestamptz,
    ADD COLUMN checked_in_at timestamptz,
    ADD CONSTRAINT reservations_check_in_window
        CHECK ((check_in_from IS NULL) = (release_at IS NULL) AND check_in_from <= release_at);

-- The releaser's batches: the due, confirmed, unchecked reservations in release order (empty
-- while no room requires check-in), and the pending ones by start (empty while none waits).
CREATE INDEX reservations_release_due ON reservations (release_at)
    WHERE status = 'confirmed' AND checked_in_at IS NULL AND release_at IS NOT NULL;
CREATE INDEX reservations_pending_start ON reservations (start_time) WHERE status = 'pending';

-- The window of a booking of room m of [start_time, end_time): NULL, NULL when m does not
-- require check-in (or its rules lack the release: room-service refuses such rules).  The
-- release comes at the end at the latest: a meeting over is not released (review 15a L4).
CREATE FUNCTION res_check_in_window(m rooms, start_time timestamptz, end_time timestamptz,
    OUT check_in_from timestamptz, OUT release_at timestamptz)
LANGUAGE sql IMMUTABLE AS $$
SELECT start_time - coalesce((m.policies->>'check_in_window_minutes')::int, 0) * interval '1 minute',
    least(start_time + (m.policies->>'release_after_minutes')::int * interval '1 minute',
        end_time)
WHERE coalesce((m.policies->>'check_in_required')::boolean, false)
    AND m.policies->>'release_after_minutes' IS NOT NULL
$$;

-- The snapshot, set for every writer (the booking and series functions of 002-018, an
-- operator's INSERT) when a reservation is booked or moved to another room or time.  A move to
-- another room or start checks it in afresh (the check-in was for the old time); a new end only
-- bounds the release anew.
CREATE FUNCTION res_check_in_snapshot() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.room_id <> OLD.room_id OR NEW.start_time <> OLD.start_time
        OR NEW.end_time <> OLD.end_time THEN
        SELECT w.check_in_from, w.release_at INTO NEW.check_in_from, NEW.release_at
        FROM rooms m, res_check_in_window(m, NEW.start_time, NEW.end_time) w
        WHERE m.id = NEW.room_id;
        IF NOT FOUND THEN
            NEW.check_in_from := NULL;
            NEW.release_at := NULL;
        END IF;
        IF TG_OP = 'UPDATE' AND (NEW.room_id <> OLD.room_id OR NEW.start_time <> OLD.start_time)
        THEN
            NEW.checked_in_at := NULL;
        END IF;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER reservations_check_in BEFORE INSERT OR UPDATE OF room_id, start_time, end_time
    ON reservations FOR EACH ROW EXECUTE FUNCTION res_check_in_snapshot();

-- The reservation object (API and events) with its check-in: the three times, NULL when the
-- room did not require check-in (reservation-service/src/repo.c writes the same for reads).
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
    'meeting_url', r.meeting_url,
    'check_in_from', to_char(r.check_in_from AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
    'release_at', to_char(r.release_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
    'checked_in_at', to_char(r.checked_in_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
$$;
