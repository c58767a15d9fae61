DROP TRIGGER clients_last_contact_delete ON interactions;
DROP TRIGGER clients_last_contact_update ON interactions;
DROP TRIGGER clients_last_contact_insert ON interactions;
DROP FUNCTION clients_last_contact_apply();
DROP INDEX clients_last_contact_idx;
ALTER TABLE clients DROP COLUMN last_contact_at;
