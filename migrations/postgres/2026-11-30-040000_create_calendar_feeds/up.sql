-- A private iCalendar feed per user and organization: the token in the URL is the only
-- credential (read-only, scheduled calls and meetings), revocable by issuing a new one.
CREATE TABLE calendar_feeds (
    token TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (user_id, organization_id)
);
