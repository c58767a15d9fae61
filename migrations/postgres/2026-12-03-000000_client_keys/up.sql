-- Duplicate checks, imports and the list's text filter look clients up by these keys with
-- equality or a prefix range on an index, so they cost the same at a million clients as
-- at a hundred. The keys are derived in Rust (phone parsing, name folding, domain of a
-- website), so existing rows are filled right after migrating (db::migrate) and
-- `name_key IS NULL` marks a row not filled yet.
ALTER TABLE clients ADD COLUMN phone_key TEXT;
ALTER TABLE clients ADD COLUMN name_key TEXT;
ALTER TABLE clients ADD COLUMN website_key TEXT;
CREATE INDEX clients_org_phone_key_idx ON clients (organization_id, phone_key)
  WHERE deleted_at IS NULL AND phone_key IS NOT NULL;
CREATE INDEX clients_org_name_key_idx ON clients (organization_id, name_key)
  WHERE deleted_at IS NULL;
CREATE INDEX clients_org_website_key_idx ON clients (organization_id, website_key)
  WHERE deleted_at IS NULL AND website_key IS NOT NULL;
CREATE INDEX clients_keys_missing_idx ON clients (id) WHERE name_key IS NULL;
-- why: prefix ranges compare bytes; under a language collation (en_US) a range can hold
-- names that do not start with the prefix, or miss ones that do. The text filter
-- compares with COLLATE "C", so these indexes do too.
CREATE INDEX clients_org_sort_prefix_idx ON clients (organization_id, sort_name COLLATE "C")
  WHERE deleted_at IS NULL;
CREATE INDEX clients_org_email_prefix_idx ON clients (organization_id, email COLLATE "C")
  WHERE deleted_at IS NULL;
-- The list's common combinations read in order straight off an index.
CREATE INDEX clients_org_kind_status_name_idx ON clients (organization_id, kind, status, sort_name, id)
  WHERE deleted_at IS NULL;
CREATE INDEX clients_org_kind_name_idx ON clients (organization_id, kind, sort_name, id)
  WHERE deleted_at IS NULL;
-- The default sort (newest first) under a type or status filter: without these the
-- planner walks every newer client of the other type first.
CREATE INDEX clients_org_kind_created_idx ON clients (organization_id, kind, created_at, id)
  WHERE deleted_at IS NULL;
CREATE INDEX clients_org_status_created_idx ON clients (organization_id, status, created_at, id)
  WHERE deleted_at IS NULL;
-- A profile's history: with only (organization_id, id) it walked the whole audit log back
-- until it found thirty entries of that client, or to the start for a client with none.
CREATE INDEX audit_log_resource_idx ON audit_log (organization_id, resource_type, resource_id, id);
ANALYZE clients, client_tags, audit_log;
