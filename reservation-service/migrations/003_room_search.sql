-- What a room search needs in the local copy of the rooms (docs/api.md#finding-a-room), kept
-- current by the room_events consumer like the rest of the copy.
--
-- Rows copied before this migration do not know their details yet (details_known = false): the
-- room-service of the same release publishes every room once more after its own migration 003
-- (docs/operations.md#upgrading-to-room-search), and the consumer takes that event although its
-- version is the one already copied.  Until then such a room is never silently missing from a
-- search: it is listed after the rooms known to fit, marked as unknown.
ALTER TABLE rooms
    ADD COLUMN equipment     text[] NOT NULL DEFAULT '{}' CHECK (cardinality(equipment) <= 100),
    ADD COLUMN building      text,
    ADD COLUMN floor         integer,
    ADD COLUMN details_known boolean NOT NULL DEFAULT false;

-- The items lower-cased with PostgreSQL's lower(), as room-service matches ?equipment= (its
-- migration 002): "projector" finds a room with "Projector".
CREATE FUNCTION room_equipment_key(items text[]) RETURNS text[]
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN ARRAY(SELECT lower(e) FROM unnest(items) AS e);

ALTER TABLE rooms ADD COLUMN equipment_key text[] NOT NULL
    GENERATED ALWAYS AS (room_equipment_key(equipment)) STORED;

-- The rooms a search may return: bookable ones, by capacity (best fit first).
CREATE INDEX rooms_bookable_capacity ON rooms (capacity, id) WHERE active AND NOT deleted;
CREATE INDEX rooms_equipment_key ON rooms USING gin (equipment_key) WHERE active AND NOT deleted;
