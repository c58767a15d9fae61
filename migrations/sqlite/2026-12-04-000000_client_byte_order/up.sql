-- SQLite already compares text byte by byte (BINARY); the PostgreSQL side of this
-- migration makes that backend do the same. (org, status, id) goes on both: every status
-- filter is answered by (org, status, created_at, id), and each index costs every insert.
DROP INDEX IF EXISTS clients_org_status_idx;
-- Company names are looked up for companies only (imports link people to their employer
-- by it): people, who also carry a company name, stay out of the index.
DROP INDEX IF EXISTS clients_org_company_idx;
CREATE INDEX clients_org_company_idx ON clients (organization_id, company_name)
  WHERE deleted_at IS NULL AND kind = 'company';
