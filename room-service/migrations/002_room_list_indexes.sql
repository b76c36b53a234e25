-- Indexes for the filtered room list, and a notification on every change of rooms for the
-- replicas' in-memory caches (docs/architecture.md#the-room-cache).

-- Trigram indexes for ?q= (a case-insensitive substring of name, building or description).
-- pg_trgm is a trusted extension (PostgreSQL 13 and later): the database's owner may create it.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- ?equipment= matches items case-insensitively with PostgreSQL's lower().  The lower-cased items
-- are a stored column that the database computes on every write (whoever writes: the service,
-- a seeding script, an administrator), so the filter is one array containment a GIN index answers.
CREATE FUNCTION room_equipment_key(items text[]) RETURNS text[]
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN ARRAY(SELECT lower(e) FROM unnest(items) AS e);

ALTER TABLE rooms ADD COLUMN equipment_key text[] NOT NULL
    GENERATED ALWAYS AS (room_equipment_key(equipment)) STORED;

CREATE INDEX rooms_equipment_key ON rooms USING gin (equipment_key);
-- ?q= compares room_fold(column) LIKE '%...%': lower(), wrapped so that the planner knows what
-- folding every row costs.  lower() is declared as cheap as an addition, so on a table of a few
-- thousand rows PostgreSQL would rather fold and match every row than read the trigram indexes
-- (measured on 1,000 rooms: 1.4 ms against 0.3 ms).  PL/pgSQL, because PostgreSQL inlines an SQL
-- function (dropping its cost) and a SET clause, the other way to prevent that, saves and
-- restores the setting on every call (on 21,000 rooms, q=hall 2 walking the list's order:
-- 30 ms with SET against 6.6 ms).  pg_catalog.lower: the same function whatever the search path.
CREATE FUNCTION room_fold(t text) RETURNS text
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE COST 100
    AS $$ BEGIN RETURN pg_catalog.lower(t); END $$;

CREATE INDEX rooms_name_trgm ON rooms USING gin (room_fold(name) gin_trgm_ops);
CREATE INDEX rooms_building_trgm ON rooms USING gin (room_fold(building) gin_trgm_ops);
CREATE INDEX rooms_description_trgm ON rooms USING gin (room_fold(description) gin_trgm_ops);
-- The list's order and keyset cursor: (lower(name), id), read in order up to the page's end.
CREATE INDEX rooms_list_order ON rooms (lower(name), id);

-- Every statement that changes rooms (any writer, also TRUNCATE) tells the listening replicas;
-- they drop their cached answers.  Statement level: one notification per statement, and
-- PostgreSQL folds equal notifications of one transaction into one.
CREATE FUNCTION rooms_notify_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('room_changes', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER rooms_notify_change
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON rooms
    FOR EACH STATEMENT EXECUTE FUNCTION rooms_notify_change();
