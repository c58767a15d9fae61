DROP TRIGGER clients_last_contact_update;
DROP TRIGGER clients_last_contact_delete;
DROP TRIGGER clients_last_contact_insert;
DROP INDEX clients_last_contact_idx;
ALTER TABLE clients DROP COLUMN last_contact_at;
