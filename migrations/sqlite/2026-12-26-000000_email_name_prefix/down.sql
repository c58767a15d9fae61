DROP INDEX clients_org_email_lcp_idx;
ALTER TABLE clients DROP COLUMN email_lcp;
