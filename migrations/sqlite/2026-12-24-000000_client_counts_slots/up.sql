-- PostgreSQL spreads the clients' counts over sixteen slots per key (see its migration of
-- the same name): concurrent creates by one owner there each locked one counter row until
-- commit. SQLite has one writer at a time, so nothing waits on a counter row: every count
-- stays in slot 0 and the triggers are unchanged. The column keeps the two schemas alike.
ALTER TABLE client_counts ADD COLUMN slot SMALLINT NOT NULL DEFAULT 0;
