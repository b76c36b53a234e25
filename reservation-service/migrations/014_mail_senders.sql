-- Whether mail is on follows the mail senders that are alive (review 14c M5), no longer a flag
-- that the last process started wrote: one process started without SMTP_URL (a debug pod, a
-- canary, a rollback) turned the invitations off for every replica.
--
-- Every reservation-service with SMTP_URL records itself here at start and then every 30 s
-- (MAIL_SENDER_BEAT in src/main.c) while its senders run, and removes its row when it stops
-- cleanly; a process without SMTP_URL writes nothing.  The outbox trigger queues invitations
-- while `mail_settings.enabled` (migrations 009, 013: SELECT ... FROM mail_settings WHERE enabled),
-- now true while some sender was seen within the last 10 minutes.
--
-- The window: a row queued while no sender is alive is still sent when one returns (the first
-- attempt is always made, however late), whereas a change made while mail reads as off is
-- never queued, and its message is lost.  So the window errs long: it must outlast the longest
-- time a live sender cannot write its heartbeat - every sender of a replica busy in a send
-- (MAIL_TIMEOUT_MS, at most 5 minutes) plus the 30 s period - and a replica restarting
-- without a clean stop.  10 minutes covers both.  The cost is the other way round: after the
-- last mail sender dies without a clean stop, changes still queue invitations for up to 10
-- minutes, which wait (visible as delivery_pending{kind="mail"}) until a sender runs again.
CREATE TABLE mail_senders (
    instance    text PRIMARY KEY CHECK (length(instance) BETWEEN 1 AND 300),
    started_at  timestamptz NOT NULL DEFAULT now(),
    seen_at     timestamptz NOT NULL DEFAULT now()
);

DROP TABLE mail_settings;

CREATE VIEW mail_settings AS
SELECT EXISTS (SELECT 1 FROM mail_senders
               WHERE seen_at > now() - interval '10 minutes') AS enabled;
