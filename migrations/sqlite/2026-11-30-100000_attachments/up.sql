-- Files kept on a client (and later deals and interactions). The bytes live in the blob
-- store (the data directory by default) under `storage_key`; the type is what the content
-- says, not what the name claims.
CREATE TABLE attachments (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    file_name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    storage_key TEXT NOT NULL,
    sensitive BOOLEAN NOT NULL DEFAULT FALSE,
    uploaded_by TEXT REFERENCES users(id) ON DELETE SET NULL,
    created_at TIMESTAMP NOT NULL,
    deleted_at TIMESTAMP
);
CREATE INDEX attachments_by_client ON attachments (client_id, created_at);
