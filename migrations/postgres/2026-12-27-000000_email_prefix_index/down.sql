DELETE FROM search_outbox o WHERE NOT EXISTS (SELECT 1 FROM organizations g WHERE g.id = o.organization_id);
ALTER TABLE search_outbox ADD CONSTRAINT search_outbox_organization_id_fkey
  FOREIGN KEY (organization_id) REFERENCES organizations(id) ON DELETE CASCADE;
ALTER TABLE import_changes ADD CONSTRAINT import_changes_organization_id_fkey
  FOREIGN KEY (organization_id) REFERENCES organizations(id) ON DELETE CASCADE;
DROP INDEX clients_org_email_lcp_idx;
ALTER TABLE clients ADD COLUMN email_lcp integer GENERATED ALWAYS AS (coalesce(
    (left(email, 1) = left(sort_name, 1))::int
    + (left(email, 2) = left(sort_name, 2))::int
    + (left(email, 3) = left(sort_name, 3))::int
    + (left(email, 4) = left(sort_name, 4))::int
    + (left(email, 5) = left(sort_name, 5))::int
    + (left(email, 6) = left(sort_name, 6))::int
    + (left(email, 7) = left(sort_name, 7))::int
    + (left(email, 8) = left(sort_name, 8))::int
    + (left(email, 9) = left(sort_name, 9))::int
    + (left(email, 10) = left(sort_name, 10))::int
    + (left(email, 11) = left(sort_name, 11))::int
    + (left(email, 12) = left(sort_name, 12))::int
    + (left(email, 13) = left(sort_name, 13))::int
    + (left(email, 14) = left(sort_name, 14))::int
    + (left(email, 15) = left(sort_name, 15))::int
    + (left(email, 16) = left(sort_name, 16))::int,
    0)) STORED;
CREATE INDEX clients_org_email_lcp_idx ON clients (organization_id, email_lcp, email)
  WHERE deleted_at IS NULL;
