DROP INDEX clients_org_country_idx;
