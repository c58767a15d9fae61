DROP INDEX opportunities_open_value_idx;
DROP TABLE risk_counts;
DROP TRIGGER client_counts_delete ON clients;
DROP TRIGGER client_counts_update ON clients;
DROP TRIGGER client_counts_insert ON clients;
DROP FUNCTION client_counts_apply();
DROP TABLE client_counts;
