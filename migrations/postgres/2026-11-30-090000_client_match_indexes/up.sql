-- Imports and duplicate checks match clients by e-mail and company name on every row.
CREATE INDEX clients_org_email_idx ON clients (organization_id, email) WHERE deleted_at IS NULL;
CREATE INDEX clients_org_company_idx ON clients (organization_id, company_name) WHERE deleted_at IS NULL;
