-- Rooms of room-service.
-- The outbox table that the events go to belongs to the shared library (common/src/outbox.c),
-- which creates it before this file runs.
CREATE TABLE rooms (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    capacity    integer NOT NULL CHECK (capacity BETWEEN 1 AND 10000),
    equipment   text[] NOT NULL DEFAULT '{}' CHECK (cardinality(equipment) <= 50),
    building    text CHECK (length(building) <= 100),
    floor       integer CHECK (floor BETWEEN -100 AND 500),
    description text CHECK (length(description) <= 1000),
    time_zone   text NOT NULL DEFAULT 'UTC',
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    version     integer NOT NULL DEFAULT 1
);
-- Names are unique regardless of case; the list is ordered by this key too.
CREATE UNIQUE INDEX rooms_name_key ON rooms (lower(name));
CREATE INDEX rooms_capacity ON rooms (capacity);
