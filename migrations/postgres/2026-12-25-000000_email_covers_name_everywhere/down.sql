DROP INDEX clients_org_email_idx;
CREATE INDEX clients_org_email_idx ON clients (organization_id, email) WHERE deleted_at IS NULL;
