-- E-mail invitations (docs/api.md#invitations): the organizer and the attendees of a reservation
-- or a series get an iTIP message (RFC 5546) on every change.  The messages are rows of the
-- shared delivery queue (common/src/deliver.c, kind 'mail', target = the recipient's address,
-- key = the reservation's id, or "series-<id>" for a series and its occurrences), queued by a
-- trigger on the outbox in the transaction that writes the event, so a message exists exactly
-- for each change that committed; reservation-service/src/mailer.c renders and sends them.

-- Whether mail is on: written by reservation-service at every start (SMTP_URL set or not), read
-- by the trigger.  Without the row (a database no service started on yet) mail is off.  With
-- replicas configured differently the last one started decides: configure them alike.
CREATE TABLE mail_settings (
    one         boolean PRIMARY KEY DEFAULT true CHECK (one),
    enabled     boolean NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- What the .ics of a series needs (series_ics.h; GET /reservations/series/{id}.ics and the
-- series' invitations): the series, its room's name and every occurrence; NULL for no series.
CREATE FUNCTION res_series_ics_data(id bigint) RETURNS json LANGUAGE sql STABLE AS $$
SELECT json_build_object('user_id', s.user_id, 'zone', s.time_zone,
    'first_start', res_local_text(s.first_start), 'duration_s', s.duration_s,
    'rule', res_series_rule(s),
    'until_s', extract(epoch FROM s.until_time)::bigint, 'purpose', s.purpose,
    'room_name', m.name, 'created_s', extract(epoch FROM s.created_at)::bigint,
    'updated_s', extract(epoch FROM s.updated_at)::bigint, 'version', s.version,
    'cancelled', s.status = 'cancelled',
    'occurrences', (SELECT coalesce(json_agg(json_build_object(
        'occurrence_start', res_local_text(r.occurrence_start),
        'local_start', res_local_text(r.start_time AT TIME ZONE s.time_zone),
        'start_s', extract(epoch FROM r.start_time)::bigint,
        'end_s', extract(epoch FROM r.end_time)::bigint,
        'confirmed', r.status = 'confirmed',
        -- An occurrence in the repeated hour of a fall-back day is the later instant here
        -- (PostgreSQL's reading of an ambiguous local time), the earlier one for an RFC 5545
        -- client: written as an override with its instants in UTC, as a changed one.
        'exception', r.exception OR EXISTS (SELECT 1 FROM unnest(ARRAY[interval '30 min',
            interval '1 hour', interval '2 hours']) AS d (step) WHERE (r.start_time - d.step)
            AT TIME ZONE s.time_zone = r.start_time AT TIME ZONE s.time_zone),
        'purpose', r.purpose, 'room_name', rm.name) ORDER BY r.occurrence_start, r.id), '[]')
        FROM reservations r JOIN rooms rm ON rm.id = r.room_id WHERE r.series_id = s.id))
FROM reservation_series s JOIN rooms m ON m.id = s.room_id
WHERE s.id = res_series_ics_data.id
$$;

-- The recipients of a change: the organizer (when known) and then the attendees, in order.
CREATE FUNCTION res_mail_recipients(organizer text, attendees text[])
RETURNS TABLE (addr text, ord bigint) LANGUAGE sql IMMUTABLE AS $$
SELECT organizer, 0 WHERE organizer IS NOT NULL
UNION ALL
SELECT a, i FROM unnest(attendees) WITH ORDINALITY AS u (a, i)
ORDER BY 2
$$;

-- The messages one outbox event asks for, one per recipient: (addr, key, payload, ord).
--   A reservation event: payload {method, reservation (res_json), room {name, time_zone},
--   zone (the times' zone: the series' for an occurrence, else the room's), local_start and
--   local_end in it, series {id, time_zone} or null, sequence, reason}.  The events of a
--   series' occurrences written by a series-level change (res.series_op set by the series
--   functions of migrations 006-008) have none: their series' own event stands for them.
--   A series event: payload {method, series_ics (res_series_ics_data), series (the event's),
--   room {name, time_zone}, organizer_name, attendees, sequence, reason}.
CREATE FUNCTION res_mail_items(event json)
RETURNS TABLE (addr text, key text, payload json, ord bigint)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    r json := event->'reservation';
    sid bigint;
    s reservation_series;
    room rooms;
    zone text;
    body json;
    seq int;
BEGIN
    IF r IS NOT NULL THEN
        sid := (r->>'series_id')::bigint;
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
        body := json_build_object(
            'method', CASE WHEN r->>'status' = 'cancelled' THEN 'CANCEL' ELSE 'REQUEST' END,
            'reservation', r,
            'room', json_build_object('name', room.name, 'time_zone', room.time_zone),
            'zone', zone,
            'local_start', res_local_text((r->>'start_time')::timestamptz AT TIME ZONE zone),
            'local_end', res_local_text((r->>'end_time')::timestamptz AT TIME ZONE zone),
            'series', CASE WHEN sid IS NOT NULL
                THEN json_build_object('id', sid, 'time_zone', s.time_zone) END,
            'sequence', seq, 'reason', r->>'cancel_reason');
        RETURN QUERY SELECT m.addr, CASE WHEN sid IS NULL THEN r->>'id' ELSE 'series-' || sid END,
            body, m.ord
            FROM res_mail_recipients(r->>'organizer_email',
                ARRAY(SELECT json_array_elements_text(r->'attendees'))) m;
    ELSIF event->'series' IS NOT NULL THEN
        sid := (event->'series'->>'id')::bigint;
        SELECT * INTO s FROM reservation_series x WHERE x.id = sid;
        IF NOT FOUND THEN
            RETURN;
        END IF;
        SELECT * INTO room FROM rooms WHERE id = s.room_id;
        body := json_build_object(
            'method', CASE WHEN s.status = 'cancelled' THEN 'CANCEL' ELSE 'REQUEST' END,
            'series', event->'series', 'series_ics', res_series_ics_data(sid),
            'room', json_build_object('name', room.name, 'time_zone', room.time_zone),
            'organizer_email', s.organizer_email, 'organizer_name', s.organizer_name,
            'attendees', to_json(s.attendees), 'meeting', s.online_meeting,
            'sequence', s.version - 1, 'reason', s.cancel_reason);
        RETURN QUERY SELECT m.addr, 'series-' || sid, body, m.ord
            FROM res_mail_recipients(s.organizer_email, s.attendees) m;
    END IF;
END
$$;

-- One statement per outbox INSERT, in outbox order, so that the messages to one recipient
-- about one reservation (or series) keep the order of its changes.
CREATE FUNCTION mail_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM mail_settings WHERE enabled) THEN
        RETURN NULL;
    END IF;
    INSERT INTO deliveries (kind, target, key, payload)
    SELECT 'mail', m.addr, m.key, m.payload
    FROM new_rows n CROSS JOIN LATERAL res_mail_items(n.payload) m
    ORDER BY n.id, m.ord;
    RETURN NULL;
END
$$;

CREATE TRIGGER outbox_mail AFTER INSERT ON outbox
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION mail_enqueue();
