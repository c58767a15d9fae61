-- Adding a person who already has an account (maybe in another organization) is an
-- invitation they accept; until then the organization has no hold on the account.
CREATE TABLE invitations (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    invited_by TEXT REFERENCES users(id) ON DELETE SET NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX invitations_once ON invitations (organization_id, user_id);
CREATE INDEX invitations_by_user ON invitations (user_id);
