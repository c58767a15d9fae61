-- Webhooks: an organization's subscriptions and the deliveries owed to them, written in the
-- transaction of the change that makes them (an outbox) and sent by a worker afterwards.
CREATE TABLE webhook_subscriptions (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    description TEXT NOT NULL,
    -- JSON array of event types; ["*"] for every one.
    events TEXT NOT NULL,
    -- Sealed under the instance key, like mailbox passwords; never returned after creation.
    secret TEXT NOT NULL,
    -- After a rotation the previous secret signs too, until previous_until.
    previous_secret TEXT,
    previous_until TIMESTAMP,
    active BOOLEAN NOT NULL,
    -- The admin allowed a loopback or private-network host (development).
    allow_private BOOLEAN NOT NULL,
    disabled_reason TEXT,
    created_by TEXT REFERENCES users(id) ON DELETE SET NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX webhook_subscriptions_by_org ON webhook_subscriptions (organization_id, active);

CREATE TABLE webhook_deliveries (
    -- The webhook-id header (msg_…), the same on every attempt.
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    subscription_id TEXT NOT NULL REFERENCES webhook_subscriptions(id) ON DELETE CASCADE,
    event_type TEXT NOT NULL,
    record_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    -- pending (due at next_attempt_at), sending, delivered, dead
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at TIMESTAMP,
    response_status INTEGER,
    response_excerpt TEXT,
    duration_ms INTEGER,
    error TEXT,
    created_at TIMESTAMP NOT NULL,
    delivered_at TIMESTAMP
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (subscription_id, id);
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (subscription_id, record_id, id);
