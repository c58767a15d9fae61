-- Interactions: calls, meetings, e-mails, notes and tasks on a client (and optionally one of
-- its deals). `occurred_at` is when it happened or is planned (completed, else scheduled,
-- else logged), the timeline's order. Content is plain text, shown escaped.
CREATE TABLE interactions (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    opportunity_id TEXT REFERENCES opportunities(id) ON DELETE SET NULL,
    user_id TEXT REFERENCES users(id) ON DELETE SET NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    content TEXT NOT NULL DEFAULT '',
    direction TEXT,
    status TEXT NOT NULL,
    scheduled_at TIMESTAMP,
    completed_at TIMESTAMP,
    occurred_at TIMESTAMP NOT NULL,
    outcome TEXT,
    duration_minutes INTEGER,
    metadata TEXT NOT NULL DEFAULT '{}',
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    deleted_at TIMESTAMP
);
CREATE INDEX interactions_timeline ON interactions (client_id, occurred_at, id);
CREATE INDEX interactions_by_org ON interactions (organization_id, occurred_at);
