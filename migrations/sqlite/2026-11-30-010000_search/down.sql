ALTER TABLE custom_fields DROP COLUMN searchable;
DROP TABLE search_outbox;
