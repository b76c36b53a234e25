-- Invitations bounded by time, and a quota on the mail a booking may send (review 14d-B M1,
-- M2, L3).
--
-- 1. reservation_attendees: one row per (invited address, reservation), with the reservation's
--    start and end, kept by triggers on reservations.  The personal feed (repo_feeds.c) and
--    GET /reservations?role=attendee (repo.c) read it as a range of (email_key, start_time):
--    the invitations of one address in one window, or the next page of them in start-time
--    order, whatever the address's history.  The GIN index of migration 008 returned every
--    reservation ever that invites the address, and the window was applied afterwards; it is
--    dropped (nothing else reads it).
--
-- 2. mail_quota: the mail recipients queued per organizer and minute.  A statement trigger on
--    deliveries counts the invitations (kind 'mail', method REQUEST, to an attendee, not the
--    organizer's own copy) each organizer's reservations and series queue, in the booking's own
--    transaction, and raises SQLSTATE RS429 when the organizer's last 60 minutes would exceed
--    res.mail_max_recipients_per_hour (a session setting of every reservation-service
--    connection: MAIL_MAX_RECIPIENTS_PER_HOUR).  The change is then refused as a whole: no row,
--    no event, no mail (reservation-service answers 429).  Cancellations (CANCEL, also an
--    attendee removed) and what a room or user deletion or a series' end mails (a REQUEST with a
--    reason) are neither counted nor refused: each follows an invitation that was counted, and
--    refusing them would stop an admin or a deletion from cancelling.

CREATE TABLE reservation_attendees (
    email_key       text NOT NULL,          -- lower-cased address (reservations.attendees_key)
    start_time      timestamptz NOT NULL,   -- the reservation's
    reservation_id  bigint NOT NULL,
    end_time        timestamptz NOT NULL,   -- the reservation's: a window's reads filter on it
    PRIMARY KEY (email_key, start_time, reservation_id) INCLUDE (end_time)
);
-- The triggers replace a reservation's rows.
CREATE INDEX reservation_attendees_reservation ON reservation_attendees (reservation_id);

INSERT INTO reservation_attendees (email_key, start_time, reservation_id, end_time)
SELECT DISTINCT k, r.start_time, r.id, r.end_time FROM reservations r, unnest(r.attendees_key) AS k;

-- Inserts, per statement (a series or a seed writes many rows at once).
CREATE FUNCTION res_attendees_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO reservation_attendees (email_key, start_time, reservation_id, end_time)
    SELECT DISTINCT k, n.start_time, n.id, n.end_time FROM new_rows n, unnest(n.attendees_key) AS k;
    RETURN NULL;
END
$$;
CREATE TRIGGER reservations_attendees_added AFTER INSERT ON reservations
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION res_attendees_added();

-- Changes of the list or the times, per row: most updates change neither and cost nothing.
CREATE FUNCTION res_attendees_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM reservation_attendees WHERE reservation_id = OLD.id;
    IF TG_OP = 'UPDATE' THEN
        INSERT INTO reservation_attendees (email_key, start_time, reservation_id, end_time)
        SELECT DISTINCT k, NEW.start_time, NEW.id, NEW.end_time FROM unnest(NEW.attendees_key) AS k;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER reservations_attendees_changed AFTER UPDATE ON reservations
    FOR EACH ROW WHEN (OLD.attendees_key IS DISTINCT FROM NEW.attendees_key
        OR OLD.start_time IS DISTINCT FROM NEW.start_time
        OR OLD.end_time IS DISTINCT FROM NEW.end_time)
    EXECUTE FUNCTION res_attendees_changed();
CREATE TRIGGER reservations_attendees_deleted AFTER DELETE ON reservations
    FOR EACH ROW WHEN (cardinality(OLD.attendees_key) > 0)
    EXECUTE FUNCTION res_attendees_changed();

DROP INDEX reservations_attendees;

-- Swept by reservation-service (res_repo_sweep_mail_quota_sql: minutes older than an hour).
CREATE TABLE mail_quota (
    user_id     bigint NOT NULL,        -- the organizer
    minute      timestamptz NOT NULL,   -- date_trunc('minute', now()) of the changes
    recipients  integer NOT NULL CHECK (recipients >= 0),
    PRIMARY KEY (user_id, minute)
);

-- The invitations a statement queued, counted per organizer (in order of user id, so that two
-- transactions take the organizers' locks in the same order).  The limit is the session's
-- res.mail_max_recipients_per_hour; without it (a session of another program: psql, a
-- migration) nothing is counted.
CREATE FUNCTION mail_quota_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    lim integer := nullif(current_setting('res.mail_max_recipients_per_hour', true), '')::int;
    o record;
    used bigint;
BEGIN
    -- Webhook rows come in statements of their own (migration 011): nothing to count.
    IF lim IS NULL OR NOT EXISTS (SELECT 1 FROM new_rows WHERE kind = 'mail') THEN
        RETURN NULL;
    END IF;
    FOR o IN
        SELECT w.user_id, count(*) AS n
        FROM new_rows d
        LEFT JOIN mail_payloads p ON d.payload->>'shared' IS NOT NULL
            AND p.id = (d.payload->>'shared')::bigint
        CROSS JOIN LATERAL (
            SELECT r.user_id, r.organizer_email FROM reservations r
            WHERE d.key NOT LIKE 'series-%' AND r.id = d.key::bigint
            UNION ALL
            SELECT s.user_id, s.organizer_email FROM reservation_series s
            WHERE d.key LIKE 'series-%' AND s.id = substr(d.key, 8)::bigint) w
        WHERE d.kind = 'mail'
          AND coalesce(d.payload->>'method', p.payload->>'method') = 'REQUEST'
          AND coalesce(d.payload->>'reason', p.payload->>'reason') IS NULL
          AND lower(d.target) IS DISTINCT FROM lower(w.organizer_email)
        GROUP BY w.user_id ORDER BY w.user_id
    LOOP
        -- One change of an organizer at a time counts, so that two at once cannot both pass
        -- (read committed: the sum below is read after the other one committed).
        PERFORM pg_advisory_xact_lock(hashtextextended('mail_quota/' || o.user_id, 0));
        INSERT INTO mail_quota AS q (user_id, minute, recipients)
        VALUES (o.user_id, date_trunc('minute', now()), o.n)
        ON CONFLICT (user_id, minute) DO UPDATE SET recipients = q.recipients + excluded.recipients;
        SELECT sum(recipients) INTO used FROM mail_quota
        WHERE user_id = o.user_id AND minute > now() - interval '1 hour';
        IF used > lim THEN
            RAISE EXCEPTION 'organizer % would mail % recipients within an hour (limit %)',
                o.user_id, used, lim USING ERRCODE = 'RS429';
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;

CREATE TRIGGER deliveries_mail_quota AFTER INSERT ON deliveries
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION mail_quota_check();
