DROP INDEX clients_org_created_idx;
CREATE INDEX clients_org_created_idx ON clients (organization_id, created_at, id) WHERE deleted_at IS NULL;
