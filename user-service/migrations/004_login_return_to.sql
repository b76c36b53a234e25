-- A sign-in started by the web app names the same-origin path to return to once it is done
-- (GET /auth/google/login?return_to=..., validated there): the callback then answers 303 to it with
-- the refresh token in an HttpOnly cookie instead of tokens in JSON (docs/api.md, "Sign-in in
-- the browser").  NULL for every other sign-in (curl, API clients), which stay as they were.
ALTER TABLE login_states ADD COLUMN return_to text CHECK (length(return_to) BETWEEN 1 AND 512);
