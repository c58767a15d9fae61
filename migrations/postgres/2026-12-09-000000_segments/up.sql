-- Segments: a named criteria tree (AND/OR groups of conditions, JSON) per organization.
-- The client list evaluates a segment live (`filter[segment]=<id>`); the members table is
-- what the segment held at its last evaluation, kept so that each client's entry and exit
-- is recorded as an event (workflows and webhooks use them) and the size has a history.
CREATE TABLE segments (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    criteria TEXT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1,
    member_count BIGINT NOT NULL DEFAULT 0,
    -- The last full evaluation; NULL when one is due (new or changed criteria).
    evaluated_at TIMESTAMP,
    created_by TEXT REFERENCES users(id) ON DELETE SET NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX segments_name ON segments (organization_id, lower(name));
CREATE INDEX segments_due ON segments (evaluated_at);

CREATE TABLE segment_members (
    segment_id TEXT NOT NULL REFERENCES segments(id) ON DELETE CASCADE,
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    entered_at TIMESTAMP NOT NULL,
    PRIMARY KEY (segment_id, client_id)
);
CREATE INDEX segment_members_by_client ON segment_members (client_id);

-- Entries and exits, newest last (ids are UUIDv7).
CREATE TABLE segment_events (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    segment_id TEXT NOT NULL REFERENCES segments(id) ON DELETE CASCADE,
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    -- entered | left
    kind TEXT NOT NULL,
    at TIMESTAMP NOT NULL
);
CREATE INDEX segment_events_by_segment ON segment_events (segment_id, id);
CREATE INDEX segment_events_by_client ON segment_events (client_id, id);

-- Clients whose data changed since the worker last looked: their memberships are
-- re-evaluated within seconds, without waiting for the periodic full evaluation.
CREATE TABLE segment_dirty (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    client_id TEXT NOT NULL
);

-- The size at the end of each day it was evaluated (size over time).
CREATE TABLE segment_sizes (
    segment_id TEXT NOT NULL REFERENCES segments(id) ON DELETE CASCADE,
    day DATE NOT NULL,
    members BIGINT NOT NULL,
    PRIMARY KEY (segment_id, day)
);

-- E-mail engagement conditions ("opened a send in the last 30 days") probe by client.
CREATE INDEX send_recipients_by_client ON send_recipients (client_id);
