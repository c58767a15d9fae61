-- Where in the stored file the next unprocessed record starts (bytes), so a chunk seeks there
-- instead of re-reading the file from the top.
ALTER TABLE import_batches ADD COLUMN file_offset BIGINT NOT NULL DEFAULT 0;
