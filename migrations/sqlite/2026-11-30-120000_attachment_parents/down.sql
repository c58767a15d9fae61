-- SQLite cannot drop a column that a foreign key uses: the table is rebuilt. Files on deals
-- and interactions stay, on their client.
CREATE TABLE attachments_old (
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
INSERT INTO attachments_old
    SELECT id, organization_id, client_id, file_name, content_type, size_bytes, sha256,
           storage_key, sensitive, uploaded_by, created_at, deleted_at
    FROM attachments;
DROP TABLE attachments;
ALTER TABLE attachments_old RENAME TO attachments;
CREATE INDEX attachments_by_client ON attachments (client_id, created_at);
