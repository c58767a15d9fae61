DROP INDEX clients_org_company_idx;
DROP INDEX clients_org_email_idx;
