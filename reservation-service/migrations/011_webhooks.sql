-- Webhooks (docs/api.md#webhooks): integrations registered by admins, each receiving the
-- reservation events it subscribed to as signed HTTP POSTs.  The deliveries are rows of the
-- shared delivery queue (common/src/deliver.c, kind 'webhook', target = the webhook's id, key
-- = the event's key), queued by a trigger on the outbox in the transaction that writes the
-- event, so a delivery exists exactly for each event that committed.
CREATE TABLE webhooks (
    id          bigserial PRIMARY KEY,
    url         text NOT NULL CHECK (length(url) BETWEEN 1 AND 2048),
    events      text[] NOT NULL CHECK (cardinality(events) > 0),
    -- The HMAC key: needed in the clear to sign, so stored as given; never returned nor logged.
    secret      text NOT NULL CHECK (length(secret) BETWEEN 16 AND 256),
    created_by  bigint NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Every event this service writes to its outbox is a reservation event (of the topic
-- RESERVATION_EVENTS_TOPIC, whatever its name): webhooks match on the event's type, so the
-- trigger needs no topic.  One statement per outbox INSERT, in outbox order, so that the
-- deliveries of one key keep the order of its events.
CREATE FUNCTION webhooks_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO deliveries (kind, target, key, payload)
    SELECT 'webhook', w.id::text, n.key, n.payload
    FROM new_rows n
    JOIN webhooks w ON w.events @> ARRAY[n.payload->>'event_type']
    ORDER BY n.id, w.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER outbox_webhooks AFTER INSERT ON outbox
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION webhooks_enqueue();
