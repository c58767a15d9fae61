ALTER TABLE import_batches DROP COLUMN file_offset;
