-- Calendar feeds (docs/api.md#calendar-feeds): the secret of each user's own feed
-- (GET /calendars/me.ics?token=...), stored only as its SHA-256; a user has at most one, rotated by
-- POST /calendars/me/token and removed by DELETE, by user_deleted and by user_disabled (the
-- user_events consumer, in the transaction of the rest of what it does); user_email_changed
-- gives it the user's new address.
CREATE TABLE feed_tokens (
    user_id     bigint PRIMARY KEY,
    token_hash  text NOT NULL UNIQUE CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    email       text NOT NULL,   -- the owner's current e-mail (for invitations)
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- The e-mail address of each user whose address changed (user_events: user_email_changed, at
-- changed_at, its occurred_at).  A feed token takes the address from here when it is made (the
-- access token's may predate the change), and the consumer gives a change to the user's
-- feed_tokens row, so that a feed never lists the invitations of an address its owner no
-- longer has.  Removed with the user (user_deleted).
CREATE TABLE user_emails (
    user_id     bigint PRIMARY KEY,
    email       text NOT NULL,
    changed_at  timestamptz NOT NULL
);

-- The local time of t in zone as "YYYY-MM-DDTHH:MM:SS" when the zone's UTC offset is the same
-- 24 hours before and after t, else NULL.  A feed writes a time with TZID only when it is not
-- near an offset change: there a local time can name two instants (PostgreSQL reads an
-- ambiguous one as standard time, RFC 5545 as the first), and the feed writes UTC instead.
CREATE FUNCTION res_feed_local(t timestamptz, zone text) RETURNS text LANGUAGE sql STABLE
RETURN CASE WHEN (t - interval '24 hours') AT TIME ZONE zone
                 = (t AT TIME ZONE zone) - interval '24 hours'
            AND (t + interval '24 hours') AT TIME ZONE zone
                 = (t AT TIME ZONE zone) + interval '24 hours'
       THEN to_char(t AT TIME ZONE zone, 'YYYY-MM-DD"T"HH24:MI:SS') END;
