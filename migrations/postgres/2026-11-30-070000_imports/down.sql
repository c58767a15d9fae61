DROP TABLE external_refs;
DROP TABLE import_changes;
DROP TABLE import_batches;
