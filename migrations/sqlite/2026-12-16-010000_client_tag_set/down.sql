DROP TRIGGER client_tag_set_update;
DROP TRIGGER client_tag_set_delete;
DROP TRIGGER client_tag_set_insert;
ALTER TABLE clients DROP COLUMN tag_set;
