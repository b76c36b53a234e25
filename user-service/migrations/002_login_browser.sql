-- Each started sign-in is bound to the browser that started it: the SHA-256 (hex) of a random
-- value that /auth/google/login sets in a cookie, which the callback must present.  NULL in rows
-- written before this column existed (or by an older replica during a rolling upgrade): such a
-- state matches no browser, and the user starts the sign-in again.
ALTER TABLE login_states ADD COLUMN browser_hash text;
