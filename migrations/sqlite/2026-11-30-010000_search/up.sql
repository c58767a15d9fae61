-- Search: changes waiting to reach the index (written in the same transaction as the
-- change, drained by the indexer, retried with backoff while the index is down), and
-- custom fields an admin marks searchable.
CREATE TABLE search_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    entity TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX search_outbox_due ON search_outbox (next_attempt_at, id);
ALTER TABLE custom_fields ADD COLUMN searchable BOOLEAN NOT NULL DEFAULT FALSE;
