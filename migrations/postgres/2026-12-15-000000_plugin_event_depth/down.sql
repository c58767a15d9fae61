ALTER TABLE plugin_events DROP COLUMN depth;
