-- A series change reaches the addresses invited to some of its occurrences only (review 14d-A
-- H1; docs/api.md#invitations).  Occurrences keep their own attendees (012), so an occurrence
-- may invite someone its series does not: that person got the occurrence's REQUEST (UID
-- series-<id>, RECURRENCE-ID), but a series-level change (PUT or DELETE of the series, this
-- and following, a room or user deletion that ends it) suppresses the occurrences' own mails
-- and went to the series' organizer and attendees alone, so their calendar kept a meeting that
-- was changed or no longer existed.
--
-- Now each such address (not the organizer, not one of the series' attendees after the change)
-- also gets, under the series' key and after the series' own rows:
-- - a REQUEST of their confirmed instances (no master: they were never sent the rule), while
--   one of them has not ended;
-- - a CANCEL of their instances that this change cancelled (updated in this transaction) or
--   removed them from (a series PUT with attendees overwrites its occurrences' own: the lists
--   before are noted by mail_note_attendees, under "o<series>:<occurrence>").
-- Their rows refer to the change's shared payload (mail_payloads, stored once) and hold the
-- method and "instances", the original starts (res_local_text, as res_series_ics_data writes
-- occurrence_start) that mailer.c writes for them, one VEVENT with RECURRENCE-ID each.
--
-- 013's res_mail_items stays as it is, renamed: the function below adds these rows to its own.

ALTER FUNCTION res_mail_items(json) RENAME TO res_mail_items_013;

-- 013's trigger function, and an occurrence's attendees before a series function changes them
-- are noted for the series' mail too (key "o<series id>:<occurrence id>"; the occurrence's
-- own event, which gets no mail, does not consume it).
CREATE OR REPLACE FUNCTION mail_note_attendees() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    k text := CASE WHEN TG_TABLE_NAME = 'reservations' THEN 'r' ELSE 's' END || OLD.id;
BEGIN
    -- (Nested: a series row has no series_id, and PL/pgSQL would read it in one expression.)
    IF TG_TABLE_NAME = 'reservations' THEN
        IF NEW.series_id IS NOT NULL AND current_setting('res.series_op', true) = 'on' THEN
            k := 'o' || NEW.series_id || ':' || OLD.id;
        END IF;
    END IF;
    IF EXISTS (SELECT 1 FROM mail_settings WHERE enabled) THEN
        -- A note no event consumed (an UPDATE without an event): not kept.
        DELETE FROM mail_attendees_before WHERE tx <> txid_current();
        INSERT INTO mail_attendees_before (tx, key, attendees)
        VALUES (txid_current(), k, OLD.attendees)
        ON CONFLICT DO NOTHING;  -- the first change in the transaction has the list mailed
    END IF;
    RETURN NEW;
END
$$;

-- The rows for the addresses invited to some occurrences of series sid only (above): key k,
-- payload over the shared payload shared, ord from 2000 on (after the series' recipients,
-- 0..100, and the CANCELs of removed attendees, 1000 on).  mailed: the lower-cased addresses
-- of those rows (an attendee removed from the series got a CANCEL of all of it).  Consumes the
-- notes of the series' occurrences (mail_note_attendees).
CREATE FUNCTION res_mail_instance_items(sid bigint, k text, shared bigint, mailed text[])
RETURNS TABLE (addr text, key text, payload json, ord bigint)
LANGUAGE sql VOLATILE AS $$
WITH s AS (
    SELECT x.organizer_email, res_attendees_key(x.attendees) AS keys
    FROM reservation_series x WHERE x.id = sid),
noted AS (
    DELETE FROM mail_attendees_before n
    WHERE n.tx = txid_current() AND n.key LIKE 'o' || sid || ':%'
    RETURNING split_part(n.key, ':', 2)::bigint AS id, n.attendees),
-- (address, occurrence, whether it is still invited there): every address of an occurrence's
-- own attendees now or before this change that is neither the organizer nor a series attendee.
inv AS (
    SELECT lower(a.addr) AS lower_addr, a.addr, r.occurrence_start, r.status, r.end_time,
        r.updated_at, a.now_in
    FROM reservations r CROSS JOIN s
    CROSS JOIN LATERAL (SELECT u.addr, true FROM unnest(r.attendees) AS u (addr)
        UNION ALL
        SELECT u.addr, false FROM noted x CROSS JOIN unnest(x.attendees) AS u (addr)
        WHERE x.id = r.id AND lower(u.addr) <> ALL (res_attendees_key(r.attendees)))
        AS a (addr, now_in)
    WHERE r.series_id = sid
    AND lower(a.addr) <> ALL (s.keys)
    AND lower(a.addr) IS DISTINCT FROM lower(s.organizer_email)),
msgs AS (
    SELECT i.lower_addr, min(i.addr) AS addr, 'REQUEST' AS method, 0 AS part,
        json_agg(res_local_text(i.occurrence_start) ORDER BY i.occurrence_start) AS instances
    FROM inv i WHERE i.now_in AND i.status = 'confirmed'
    GROUP BY i.lower_addr HAVING bool_or(i.end_time > now())
    UNION ALL
    SELECT i.lower_addr, min(i.addr), 'CANCEL', 1,
        json_agg(res_local_text(i.occurrence_start) ORDER BY i.occurrence_start)
    FROM inv i
    WHERE (NOT i.now_in OR (i.status = 'cancelled' AND i.updated_at = now()))
    AND i.lower_addr <> ALL (mailed)
    GROUP BY i.lower_addr)
SELECT m.addr, k, json_build_object('shared', shared, 'method', m.method,
        'instances', m.instances),
    2000 + row_number() OVER (ORDER BY m.lower_addr, m.part)
FROM msgs m
$$;

CREATE FUNCTION res_mail_items(event json)
RETURNS TABLE (addr text, key text, payload json, ord bigint)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    m record;
    shared bigint;
    mailed text[] := '{}';
BEGIN
    FOR m IN SELECT * FROM res_mail_items_013(event) AS x LOOP
        addr := m.addr;
        key := m.key;
        payload := m.payload;
        ord := m.ord;
        shared := coalesce(shared, (m.payload->>'shared')::bigint);
        mailed := mailed || lower(m.addr);
        RETURN NEXT;
    END LOOP;
    IF event->'series' IS NOT NULL AND shared IS NOT NULL THEN
        RETURN QUERY SELECT * FROM res_mail_instance_items(
            (event->'series'->>'id')::bigint, 'series-' || (event->'series'->>'id'), shared,
            mailed);
    END IF;
END
$$;
