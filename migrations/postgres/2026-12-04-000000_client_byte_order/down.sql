ALTER TABLE clients
  ALTER COLUMN kind TYPE TEXT COLLATE "default",
  ALTER COLUMN status TYPE TEXT COLLATE "default",
  ALTER COLUMN sort_name TYPE TEXT COLLATE "default",
  ALTER COLUMN email TYPE TEXT COLLATE "default",
  ALTER COLUMN company_name TYPE TEXT COLLATE "default",
  ALTER COLUMN name_key TYPE TEXT COLLATE "default",
  ALTER COLUMN phone_key TYPE TEXT COLLATE "default",
  ALTER COLUMN website_key TYPE TEXT COLLATE "default";
CREATE INDEX clients_org_status_idx ON clients (organization_id, status, id) WHERE deleted_at IS NULL;
CREATE INDEX clients_org_sort_prefix_idx ON clients (organization_id, sort_name COLLATE "C")
  WHERE deleted_at IS NULL;
CREATE INDEX clients_org_email_prefix_idx ON clients (organization_id, email COLLATE "C")
  WHERE deleted_at IS NULL;
DROP INDEX IF EXISTS clients_org_company_idx;
CREATE INDEX clients_org_company_idx ON clients (organization_id, company_name) WHERE deleted_at IS NULL;
