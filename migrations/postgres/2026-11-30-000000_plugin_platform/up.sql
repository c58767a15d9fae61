-- Plugin platform, second part: approved HTTP hosts and the bundle's signer per install,
-- per-plugin storage scoped to the organization, trusted vendor keys and the
-- "signatures required" switch, and in-console notifications for admins.
ALTER TABLE plugin_installs ADD COLUMN approved_hosts TEXT NOT NULL DEFAULT '[]';
ALTER TABLE plugin_installs ADD COLUMN signer_key TEXT;
ALTER TABLE organizations ADD COLUMN plugin_signatures_required BOOLEAN NOT NULL DEFAULT FALSE;

CREATE TABLE plugin_storage (
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    plugin_id TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (organization_id, plugin_id, key)
);

CREATE TABLE plugin_trusted_keys (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    public_key TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (organization_id, public_key)
);

CREATE TABLE notifications (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    link TEXT,
    read_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX notifications_by_user ON notifications (organization_id, user_id, read_at);
