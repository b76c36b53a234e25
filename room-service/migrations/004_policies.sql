-- A room's booking rules (docs/api.md#room-policies): NULL = none.  room-service checks and
-- normalises them (room-service/src/policy.c) and publishes them with the room on room_events;
-- reservation-service enforces them on its copy.  jsonb: one stored form whatever the spelling
-- of the request, so the API and the events show the same object (keys in jsonb's order).
-- Adding a nullable column without a default rewrites nothing; the CHECK reads each row once.
ALTER TABLE rooms ADD COLUMN policies jsonb
    CHECK (policies IS NULL OR jsonb_typeof(policies) = 'object');
