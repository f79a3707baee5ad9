-- Webhook events waiting for delivery (src/webhooks/persist.rs): one row per
-- endpoint and event, kept from the moment the event is queued until its
-- batch is delivered, given up or dropped from a full queue. `node_id` is
-- the node that queues and delivers it; `order_key` orders one node's
-- events for one endpoint (assigned by the hub, increasing); `queued_at` is
-- Unix milliseconds; `payload` is the event's JSON exactly as sent.
CREATE TABLE webhook_outbox (
    endpoint  TEXT    NOT NULL,
    event_id  TEXT    NOT NULL,
    node_id   TEXT    NOT NULL,
    order_key INTEGER NOT NULL,
    queued_at INTEGER NOT NULL,
    payload   TEXT    NOT NULL,
    PRIMARY KEY (endpoint, event_id)
);

CREATE INDEX webhook_outbox_order ON webhook_outbox (node_id, endpoint, order_key);

-- When each node sharing the database last said it is alive (Unix
-- milliseconds, the node's clock). In a cluster on PostgreSQL, the rows of
-- a node silent for PRESENCE_NODE_TIMEOUT are taken over by a live node.
CREATE TABLE webhook_outbox_nodes (
    node_id TEXT PRIMARY KEY,
    seen_at INTEGER NOT NULL
);
