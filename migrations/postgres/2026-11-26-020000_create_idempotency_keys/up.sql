-- Responses to POSTs sent with an Idempotency-Key, replayed when the same request is retried.
CREATE TABLE idempotency_keys (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status_code INTEGER,
    response_body TEXT NOT NULL DEFAULT '',
    response_headers TEXT NOT NULL DEFAULT '{}',
    created_at TIMESTAMP NOT NULL,
    UNIQUE (organization_id, user_id, idem_key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
