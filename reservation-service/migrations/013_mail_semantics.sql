-- Invitations as calendar clients read them (RFC 5546/5545; docs/api.md#invitations), review
-- 14c M1, M2, M3, M6, L2, L4 and the DST fold of a single reservation.  Redefines the mail
-- functions of 009_mail.sql (res_series_ics_data, res_mail_items); the rows already
-- queued in 009's format stay sendable (mailer.c reads both).
--
-- - The payload of a series-level change's mails (with the series' .ics data) is stored once
--   (mail_payloads); the recipients' rows refer to it by id ("shared"), instead of a copy of
--   the whole series in every row.
-- - Every occurrence in it carries its version (an override's SEQUENCE is the larger of its
--   series' and its own) and its attendees when they differ from the series'.
-- - A per-occurrence mail carries its series' head (zone, first_start, rule, until): mailer.c
--   computes its RECURRENCE-ID with series_ics_recurrence_id, the function the series mail's
--   overrides use, so both name the same instance.
-- - A series ended with confirmed (past) occurrences left is mailed as a REQUEST whose rule is
--   cut after them ("cut_s"), not as a CANCEL that would remove the past meetings too.
-- - An attendee removed by an update gets a CANCEL ("removed"); one added gets the
--   invitation's wording ("added": the lower-cased addresses new in this change).  The list
--   before the change is noted by a BEFORE UPDATE trigger (mail_attendees_before) and read by
--   the outbox trigger in the same transaction; the public events are unchanged.

-- Whether t is the later of two instants that the zone's clock shows as the same local time
-- (the repeated hour of a fall-back day).  PostgreSQL reads such a local time as the later
-- instant, an RFC 5545 client as the earlier one: an invitation writes such a time in UTC.
CREATE FUNCTION res_local_repeated(t timestamptz, zone text) RETURNS boolean
LANGUAGE sql STABLE AS $$
SELECT EXISTS (SELECT 1 FROM unnest(ARRAY[interval '30 min', interval '1 hour',
    interval '2 hours']) AS d (step)
    WHERE (t - d.step) AT TIME ZONE zone = t AT TIME ZONE zone)
$$;

-- The series without its occurrences (series_ics_read reads it): what a per-occurrence mail
-- needs to name its instance as the series mail does.  NULL for no series.
CREATE FUNCTION res_series_ics_head(id bigint) RETURNS json LANGUAGE sql STABLE AS $$
SELECT json_build_object('user_id', s.user_id, 'zone', s.time_zone,
    'first_start', res_local_text(s.first_start), 'duration_s', s.duration_s,
    'rule', res_series_rule(s),
    'until_s', extract(epoch FROM s.until_time)::bigint, 'purpose', s.purpose,
    'room_name', m.name, 'created_s', extract(epoch FROM s.created_at)::bigint,
    'updated_s', extract(epoch FROM s.updated_at)::bigint, 'version', s.version,
    'cancelled', s.status = 'cancelled')
FROM reservation_series s JOIN rooms m ON m.id = s.room_id
WHERE s.id = res_series_ics_head.id
$$;

-- 009's function with each occurrence's version and attendees (null: the series'), and the
-- fold rule shared with single reservations (res_local_repeated).
CREATE OR REPLACE FUNCTION res_series_ics_data(id bigint) RETURNS json LANGUAGE sql STABLE AS $$
SELECT (res_series_ics_head(s.id)::jsonb || jsonb_build_object('occurrences',
    (SELECT coalesce(jsonb_agg(jsonb_build_object(
        'occurrence_start', res_local_text(r.occurrence_start),
        'local_start', res_local_text(r.start_time AT TIME ZONE s.time_zone),
        'start_s', extract(epoch FROM r.start_time)::bigint,
        'end_s', extract(epoch FROM r.end_time)::bigint,
        'confirmed', r.status = 'confirmed',
        'version', r.version,
        -- An occurrence in the repeated hour of a fall-back day: an override in UTC.
        'exception', r.exception OR res_local_repeated(r.start_time, s.time_zone),
        'attendees', CASE WHEN r.attendees IS DISTINCT FROM s.attendees
            THEN to_jsonb(r.attendees) END,
        'purpose', r.purpose, 'room_name', rm.name) ORDER BY r.occurrence_start, r.id), '[]')
        FROM reservations r JOIN rooms rm ON rm.id = r.room_id WHERE r.series_id = s.id)))::json
FROM reservation_series s
WHERE s.id = res_series_ics_data.id
$$;

-- The payload of the series mails of one change (with the series' .ics data), once for all
-- their recipients (M3): their rows hold {"shared": id} (and what differs for one recipient,
-- e.g. a removed attendee's method and "removed"), laid over it by mailer.c.  Kept while a
-- delivery refers to it; then swept (mailer.h res_mail_sweep_sql).
CREATE TABLE mail_payloads (
    id          bigserial PRIMARY KEY,
    key         text NOT NULL,          -- the deliveries' key ("series-<id>")
    payload     json NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mail_payloads_created ON mail_payloads (created_at);
-- The sweep asks whether a delivery still refers to a row.
CREATE INDEX deliveries_mail_shared ON deliveries ((payload->>'shared'))
    WHERE kind = 'mail' AND payload->>'shared' IS NOT NULL;

-- The attendees before a change, for the mails of that change (L4): written by the BEFORE
-- UPDATE triggers below when a reservation's or series' attendees change while mail is on,
-- consumed by res_mail_items (the event of that change) in the same transaction (tx), so that
-- the table holds no committed row (one left by an UPDATE without an event is deleted by the
-- next note).
CREATE TABLE mail_attendees_before (
    tx          bigint NOT NULL,
    key         text NOT NULL,          -- "r<id>" or "s<id>"
    attendees   text[] NOT NULL,
    PRIMARY KEY (tx, key)
);

CREATE FUNCTION mail_note_attendees() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- A series function's own change of its occurrences: the series' mail stands for them.
    -- (Nested: a series row has no series_id, and PL/pgSQL would read it in one expression.)
    IF TG_TABLE_NAME = 'reservations' THEN
        IF NEW.series_id IS NOT NULL AND current_setting('res.series_op', true) = 'on' THEN
            RETURN NEW;
        END IF;
    END IF;
    IF EXISTS (SELECT 1 FROM mail_settings WHERE enabled) THEN
        -- A note no event consumed (an UPDATE without an event): not kept.
        DELETE FROM mail_attendees_before WHERE tx <> txid_current();
        INSERT INTO mail_attendees_before (tx, key, attendees)
        VALUES (txid_current(), CASE WHEN TG_TABLE_NAME = 'reservations' THEN 'r' ELSE 's' END
            || OLD.id, OLD.attendees)
        ON CONFLICT DO NOTHING;  -- the first change in the transaction has the list mailed
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER reservations_mail_attendees BEFORE UPDATE OF attendees ON reservations
    FOR EACH ROW WHEN (OLD.attendees IS DISTINCT FROM NEW.attendees)
    EXECUTE FUNCTION mail_note_attendees();
CREATE TRIGGER reservation_series_mail_attendees BEFORE UPDATE OF attendees
    ON reservation_series
    FOR EACH ROW WHEN (OLD.attendees IS DISTINCT FROM NEW.attendees)
    EXECUTE FUNCTION mail_note_attendees();

-- The attendees noted before this transaction's change of key (NULL: unchanged), consumed.
CREATE FUNCTION mail_attendees_taken(k text) RETURNS text[] LANGUAGE sql VOLATILE AS $$
DELETE FROM mail_attendees_before WHERE tx = txid_current() AND key = k RETURNING attendees
$$;

-- The lower-cased attendees a change invited: all of them on a create (created), those not in
-- before otherwise; NULL when the attendees did not change (before NULL).
CREATE FUNCTION res_mail_added(created boolean, attendees text[], before text[]) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
SELECT CASE WHEN created THEN to_jsonb(res_attendees_key(attendees))
    WHEN before IS NOT NULL THEN to_jsonb(ARRAY(
        SELECT x FROM unnest(res_attendees_key(attendees)) AS x
        WHERE x <> ALL (res_attendees_key(before)))) END
$$;

-- The messages one outbox event asks for (addr, key, payload, ord), as 009's, and:
--   a reservation event's payload also has start_s, end_s, utc (its times are written in UTC:
--   one of them is in a repeated hour), series {id, time_zone, head} (res_series_ics_head),
--   added (lower-cased addresses invited by this change, or null when the attendees did not
--   change; every one on a create);
--   a series event's rows are {"shared": id}: the payload, stored once in mail_payloads, is
--   009's with added and cut_s (a cancelled series with confirmed occurrences left: a REQUEST
--   whose rule ends before cut_s);
--   each attendee removed by this change gets a CANCEL with removed = true.
CREATE OR REPLACE FUNCTION res_mail_items(event json)
RETURNS TABLE (addr text, key text, payload json, ord bigint)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    r json := event->'reservation';
    sid bigint;
    s reservation_series;
    room rooms;
    zone text;
    body jsonb;
    seq int;
    now_list text[];
    before text[];
    organizer text;
    cut bigint;
    shared bigint;
    method text;
    k text;
BEGIN
    IF r IS NOT NULL THEN
        sid := (r->>'series_id')::bigint;
        before := mail_attendees_taken('r' || (r->>'id'));
        -- 'on': a series function's own change; ",id,...,": the series a room or user deletion
        -- ends (res_cancel_future), whose other occurrences still get mails of their own.
        IF sid IS NOT NULL AND (current_setting('res.series_op', true) = 'on'
            OR strpos(current_setting('res.series_op', true), ',' || sid || ',') > 0) THEN
            RETURN;
        END IF;
        SELECT * INTO room FROM rooms WHERE id = (r->>'room_id')::bigint;
        seq := (r->>'version')::int - 1;
        IF sid IS NOT NULL THEN
            SELECT * INTO s FROM reservation_series x WHERE x.id = sid;
            seq := greatest(seq, s.version - 1);
        END IF;
        zone := coalesce(s.time_zone, room.time_zone, 'UTC');
        method := CASE WHEN r->>'status' = 'cancelled' THEN 'CANCEL' ELSE 'REQUEST' END;
        now_list := ARRAY(SELECT json_array_elements_text(r->'attendees'));
        organizer := r->>'organizer_email';
        k := CASE WHEN sid IS NULL THEN r->>'id' ELSE 'series-' || sid END;
        body := jsonb_build_object(
            'method', method, 'reservation', r,
            'room', json_build_object('name', room.name, 'time_zone', room.time_zone),
            'zone', zone,
            'local_start', res_local_text((r->>'start_time')::timestamptz AT TIME ZONE zone),
            'local_end', res_local_text((r->>'end_time')::timestamptz AT TIME ZONE zone),
            'start_s', extract(epoch FROM (r->>'start_time')::timestamptz)::bigint,
            'end_s', extract(epoch FROM (r->>'end_time')::timestamptz)::bigint,
            'utc', res_local_repeated((r->>'start_time')::timestamptz, zone)
                OR res_local_repeated((r->>'end_time')::timestamptz, zone),
            'series', CASE WHEN sid IS NOT NULL
                THEN json_build_object('id', sid, 'time_zone', s.time_zone,
                    'head', res_series_ics_head(sid)) END,
            'sequence', seq, 'reason', r->>'cancel_reason',
            'added', res_mail_added((r->>'version')::int = 1, now_list, before));
    ELSIF event->'series' IS NOT NULL THEN
        sid := (event->'series'->>'id')::bigint;
        SELECT * INTO s FROM reservation_series x WHERE x.id = sid;
        IF NOT FOUND THEN
            RETURN;
        END IF;
        before := mail_attendees_taken('s' || sid);
        SELECT * INTO room FROM rooms WHERE id = s.room_id;
        IF s.status = 'cancelled' THEN
            -- Confirmed occurrences left (they have begun): the series ends after the last.
            SELECT 1 + max(extract(epoch FROM greatest(r2.start_time,
                    r2.occurrence_start AT TIME ZONE s.time_zone,
                    (r2.occurrence_start::date + s.first_start::time) AT TIME ZONE s.time_zone)
                ))::bigint
            INTO cut FROM reservations r2 WHERE r2.series_id = sid AND r2.status = 'confirmed';
        END IF;
        now_list := s.attendees;
        organizer := s.organizer_email;
        k := 'series-' || sid;
        method := CASE WHEN s.status = 'cancelled' AND cut IS NULL THEN 'CANCEL' ELSE 'REQUEST' END;
        INSERT INTO mail_payloads (key, payload) VALUES (k, json_build_object(
            'method', method, 'series', event->'series', 'series_ics', res_series_ics_data(sid),
            'room', json_build_object('name', room.name, 'time_zone', room.time_zone),
            'organizer_email', s.organizer_email, 'organizer_name', s.organizer_name,
            'attendees', to_json(s.attendees), 'meeting', s.online_meeting,
            'sequence', s.version - 1, 'reason', s.cancel_reason, 'cut_s', cut,
            'added', res_mail_added(s.version = 1, now_list, before)))
        RETURNING id INTO shared;
        body := jsonb_build_object('shared', shared);
    ELSE
        RETURN;
    END IF;
    RETURN QUERY SELECT m.addr, k, body::json, m.ord
        FROM res_mail_recipients(organizer, now_list) m;
    -- The attendees this change removed: a CANCEL each (RFC 5546 3.2.5), after the others.
    IF before IS NOT NULL AND method = 'REQUEST' THEN
        RETURN QUERY SELECT b.a, k,
            (body || jsonb_build_object('method', 'CANCEL', 'removed', true))::json,
            1000 + b.i
            FROM unnest(before) WITH ORDINALITY AS b (a, i)
            WHERE lower(b.a) <> ALL (res_attendees_key(now_list))
            AND lower(b.a) IS DISTINCT FROM lower(organizer);
    END IF;
END
$$;
