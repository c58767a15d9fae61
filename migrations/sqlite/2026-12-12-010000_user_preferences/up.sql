-- How each person reads times and figures (an IANA zone and a locale code, checked by the
-- application); stored times stay UTC. The defaults keep what everyone saw before.
ALTER TABLE users ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'UTC';
ALTER TABLE users ADD COLUMN locale TEXT NOT NULL DEFAULT 'en-GB';
