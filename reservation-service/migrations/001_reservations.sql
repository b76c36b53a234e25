-- reservation-service: a local copy of the rooms (from room_events), the reservations and the
-- idempotency keys of POST /reservations.
-- The outbox table that the events go to belongs to the shared library (common/src/outbox.c),
-- which creates it before this file runs.
CREATE EXTENSION IF NOT EXISTS btree_gist;

-- Kept current by the room_events consumer; a deleted room stays as a tombstone (deleted = true)
-- so that an older event arriving late cannot bring it back.
CREATE TABLE rooms (
    id          bigint PRIMARY KEY,
    name        text NOT NULL DEFAULT '',
    capacity    integer,
    time_zone   text NOT NULL DEFAULT 'UTC',
    active      boolean NOT NULL DEFAULT true,
    deleted     boolean NOT NULL DEFAULT false,
    version     integer NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE reservations (
    id            bigserial PRIMARY KEY,
    room_id       bigint NOT NULL REFERENCES rooms (id),
    user_id       bigint NOT NULL,
    purpose       text NOT NULL DEFAULT '' CHECK (length(purpose) <= 200),
    start_time    timestamptz NOT NULL,
    end_time      timestamptz NOT NULL,
    status        text NOT NULL DEFAULT 'confirmed' CHECK (status IN ('confirmed', 'cancelled')),
    cancel_reason text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    version       integer NOT NULL DEFAULT 1,
    CHECK (start_time < end_time),
    -- The guarantee: no two confirmed reservations of one room overlap, ever.
    CONSTRAINT reservations_no_overlap EXCLUDE USING gist (
        room_id WITH =, tstzrange(start_time, end_time, '[)') WITH &&
    ) WHERE (status = 'confirmed')
);
CREATE INDEX reservations_user_start ON reservations (user_id, start_time);
CREATE INDEX reservations_room_start ON reservations (room_id, start_time);
CREATE INDEX reservations_start ON reservations (start_time, id);

-- POST /reservations with Idempotency-Key: the first response, replayed for the same body.
CREATE TABLE idempotency_keys (
    user_id      bigint NOT NULL,
    key          text NOT NULL,
    request_hash text NOT NULL,
    status       integer NOT NULL,
    response     text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);
