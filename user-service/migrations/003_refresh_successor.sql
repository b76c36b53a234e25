-- A rotated refresh token remembers the token it was rotated into, so that the same refresh
-- repeated within REFRESH_REUSE_GRACE_SECONDS (a client that lost the answer) gets the same
-- successor instead of revoking the sign-in.  successor_box is that token sealed with
-- AES-256-GCM under a key derived from the rotated token itself (user-service/src/tokens.c):
-- the database holds only the rotated token's SHA-256, which is not that key, so the box is of
-- no use without the token.  It is dropped when the family rotates again or is revoked.
-- successor_id is a plain pointer, not a foreign key: a successor that is gone just ends the
-- grace (the join finds nothing), and deletions need no index on it.
ALTER TABLE refresh_tokens
    ADD COLUMN successor_id  bigint,
    ADD COLUMN successor_box text;
