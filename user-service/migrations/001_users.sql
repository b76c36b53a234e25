-- Users, sign-in state and refresh tokens of user-service.
-- The outbox table that the events go to belongs to the shared library (common/src/outbox.c),
-- which creates it before this file runs.
CREATE TABLE users (
    id            bigserial PRIMARY KEY,
    google_sub    text UNIQUE,
    email         text NOT NULL CHECK (length(email) BETWEEN 3 AND 320),
    name          text NOT NULL DEFAULT '' CHECK (length(name) <= 200),
    picture       text CHECK (length(picture) <= 2048),
    role          text NOT NULL DEFAULT 'employee' CHECK (role IN ('admin', 'employee')),
    disabled      boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    last_login_at timestamptz,
    version       integer NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

-- One row per started sign-in: single use, expires after ten minutes.
CREATE TABLE login_states (
    state         text PRIMARY KEY,
    nonce         text NOT NULL,
    code_verifier text NOT NULL,
    expires_at    timestamptz NOT NULL
);
CREATE INDEX login_states_expires ON login_states (expires_at);

-- Refresh tokens are stored as SHA-256 hashes.  A family is one sign-in; rotation marks the old
-- token used, and presenting a used token again revokes the whole family.
CREATE TABLE refresh_tokens (
    id          bigserial PRIMARY KEY,
    token_hash  text NOT NULL UNIQUE,
    family      uuid NOT NULL,
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    revoked_at  timestamptz
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
