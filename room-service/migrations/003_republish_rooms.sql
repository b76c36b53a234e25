-- reservation-service keeps a copy of every room from room_events; its release with room search
-- (docs/api.md#finding-a-room) also copies equipment, building and floor, which the events it has
-- consumed before carry but it did not keep.  This row asks room-service to publish every room
-- once more (room_updated at the room's current version) when it starts after this migration;
-- room_repo_republish_requested() (room-service/src/repo.c) deletes the row in the statement that
-- writes the events, so that it happens once whatever the number of replicas.  An operator can
-- ask for it again with INSERT INTO room_republish DEFAULT VALUES and a restart
-- (docs/operations.md#upgrading-to-room-search).
CREATE TABLE room_republish (
    requested_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO room_republish DEFAULT VALUES;
