ALTER TABLE client_counts DROP COLUMN slot;
