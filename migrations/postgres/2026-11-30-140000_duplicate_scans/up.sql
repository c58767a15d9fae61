-- Duplicate groups found by the background scan, per organization, and the scan's state.
-- A scan is running while started_at is later than finished_at; it is due when someone asked
-- after the last one finished, or a day after it.
CREATE TABLE duplicate_scans (
    organization_id TEXT PRIMARY KEY NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    requested_at TIMESTAMP,
    started_at TIMESTAMP,
    finished_at TIMESTAMP,
    scanned_clients BIGINT NOT NULL DEFAULT 0,
    group_count INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE duplicate_groups (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    reason TEXT NOT NULL,
    -- JSON array of client ids, oldest first (the first is the suggested survivor).
    client_ids TEXT NOT NULL,
    found_at TIMESTAMP NOT NULL
);
CREATE INDEX duplicate_groups_by_org ON duplicate_groups (organization_id, id);
