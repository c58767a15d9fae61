DROP TRIGGER client_tag_set_delete ON client_tags;
DROP TRIGGER client_tag_set_update ON client_tags;
DROP TRIGGER client_tag_set_insert ON client_tags;
DROP FUNCTION client_tag_set_apply();
DROP FUNCTION client_tag_set_refresh(TEXT[]);
ALTER TABLE clients DROP COLUMN tag_set;
