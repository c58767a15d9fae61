DROP INDEX clients_org_email_lcp_idx;
ALTER TABLE clients ADD COLUMN email_lcp INTEGER GENERATED ALWAYS AS (coalesce(
    (substr(email, 1, 1) = substr(sort_name, 1, 1))
    + (substr(email, 1, 2) = substr(sort_name, 1, 2))
    + (substr(email, 1, 3) = substr(sort_name, 1, 3))
    + (substr(email, 1, 4) = substr(sort_name, 1, 4))
    + (substr(email, 1, 5) = substr(sort_name, 1, 5))
    + (substr(email, 1, 6) = substr(sort_name, 1, 6))
    + (substr(email, 1, 7) = substr(sort_name, 1, 7))
    + (substr(email, 1, 8) = substr(sort_name, 1, 8))
    + (substr(email, 1, 9) = substr(sort_name, 1, 9))
    + (substr(email, 1, 10) = substr(sort_name, 1, 10))
    + (substr(email, 1, 11) = substr(sort_name, 1, 11))
    + (substr(email, 1, 12) = substr(sort_name, 1, 12))
    + (substr(email, 1, 13) = substr(sort_name, 1, 13))
    + (substr(email, 1, 14) = substr(sort_name, 1, 14))
    + (substr(email, 1, 15) = substr(sort_name, 1, 15))
    + (substr(email, 1, 16) = substr(sort_name, 1, 16)),
    0)) VIRTUAL;
CREATE INDEX clients_org_email_lcp_idx ON clients (organization_id, email_lcp, email, sort_name, id)
  WHERE deleted_at IS NULL;
