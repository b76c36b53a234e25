-- Whether a mail sender counts as alive, defined once (review 14d-A L5): the view mail_settings
-- (mail on while some sender is alive, migration 014, which explains the 10 minutes) and the
-- start-up count of the other senders (src/repo_mail.c) both read mail_sender_alive.  A SQL
-- function this simple is inlined: the plans stay what they were.
CREATE FUNCTION mail_sender_alive(seen_at timestamptz) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT seen_at > now() - interval '10 minutes' $$;

CREATE OR REPLACE VIEW mail_settings AS
SELECT EXISTS (SELECT 1 FROM mail_senders m WHERE mail_sender_alive(m.seen_at)) AS enabled;
