DROP INDEX opportunities_open_value_idx;
DROP TABLE risk_counts;
DROP TRIGGER client_counts_track ON clients;
DROP FUNCTION client_counts_track();
DROP TABLE client_counts;
