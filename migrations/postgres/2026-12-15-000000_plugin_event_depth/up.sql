-- How many workflow links led to the change that raised the event: a trigger the plugin
-- raises from its hook starts runs that deep, so a loop through a plugin is stopped like
-- any other workflow loop.
ALTER TABLE plugin_events ADD COLUMN depth INTEGER NOT NULL DEFAULT 0;
