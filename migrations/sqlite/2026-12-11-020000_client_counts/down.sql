DROP INDEX opportunities_open_value_idx;
DROP TABLE risk_counts;
DROP TRIGGER client_counts_update;
DROP TRIGGER client_counts_delete;
DROP TRIGGER client_counts_insert;
DROP TABLE client_counts;
