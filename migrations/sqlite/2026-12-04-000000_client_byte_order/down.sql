CREATE INDEX clients_org_status_idx ON clients (organization_id, status, id) WHERE deleted_at IS NULL;
DROP INDEX IF EXISTS clients_org_company_idx;
CREATE INDEX clients_org_company_idx ON clients (organization_id, company_name) WHERE deleted_at IS NULL;
