DROP INDEX clients_org_email_lcp_idx;
ALTER TABLE clients DROP COLUMN email_lcp;
DROP INDEX clients_org_email_idx;
CREATE INDEX clients_org_email_idx ON clients (organization_id, email) INCLUDE (sort_name, id)
  WHERE deleted_at IS NULL;
