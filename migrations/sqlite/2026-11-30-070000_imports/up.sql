-- An import: one uploaded file, its column mapping, and how far the background run got.
-- `processed_rows` advances in the same transaction as the rows it covers, so a restart
-- resumes after the last committed chunk and never imports a row twice.
CREATE TABLE import_batches (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    user_id TEXT REFERENCES users(id) ON DELETE SET NULL,
    file_name TEXT NOT NULL,
    preset TEXT NOT NULL,
    kind TEXT NOT NULL,
    mode TEXT NOT NULL,
    mapping TEXT NOT NULL,
    status TEXT NOT NULL,
    total_rows INTEGER NOT NULL,
    processed_rows INTEGER NOT NULL DEFAULT 0,
    created_count INTEGER NOT NULL DEFAULT 0,
    updated_count INTEGER NOT NULL DEFAULT 0,
    skipped_count INTEGER NOT NULL DEFAULT 0,
    failed_count INTEGER NOT NULL DEFAULT 0,
    errors TEXT NOT NULL DEFAULT '[]',
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP
);
CREATE INDEX import_batches_by_org ON import_batches (organization_id, created_at);
-- What a batch did to each record, newest last: enough to undo it exactly.
CREATE TABLE import_changes (
    id TEXT PRIMARY KEY NOT NULL,
    batch_id TEXT NOT NULL REFERENCES import_batches(id) ON DELETE CASCADE,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    entity TEXT NOT NULL,
    record_id TEXT NOT NULL,
    action TEXT NOT NULL,
    before TEXT
);
CREATE INDEX import_changes_by_batch ON import_changes (batch_id, seq);
-- Ids records had in the system they came from (HubSpot record id, Salesforce id, …):
-- relations in later files resolve through them, and re-imports match on them.
CREATE TABLE external_refs (
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    source TEXT NOT NULL,
    entity TEXT NOT NULL,
    external_id TEXT NOT NULL,
    record_id TEXT NOT NULL,
    batch_id TEXT REFERENCES import_batches(id) ON DELETE SET NULL,
    PRIMARY KEY (organization_id, source, entity, external_id)
);
CREATE INDEX external_refs_by_record ON external_refs (record_id);
