-- Plugin event hooks waiting to run: written in the transaction of the change that raised
-- them, delivered in order per organization by the event workers, removed once run. A
-- worker claims a row for a lease; a claim whose worker died is taken again after it.
CREATE TABLE plugin_events (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    install_id TEXT NOT NULL REFERENCES plugin_installs(id) ON DELETE CASCADE,
    hook TEXT NOT NULL,
    input TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    claimed_until TIMESTAMP
);
CREATE INDEX plugin_events_by_org ON plugin_events (organization_id, id);
