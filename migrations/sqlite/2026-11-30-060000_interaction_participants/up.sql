-- Several clients and users can take part in one meeting or call: the interaction shows on
-- every participating client's timeline and in every participating user's calendar.
CREATE TABLE interaction_participants (
    id TEXT PRIMARY KEY NOT NULL,
    interaction_id TEXT NOT NULL REFERENCES interactions(id) ON DELETE CASCADE,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    client_id TEXT REFERENCES clients(id) ON DELETE CASCADE,
    user_id TEXT REFERENCES users(id) ON DELETE CASCADE,
    CHECK ((client_id IS NULL) <> (user_id IS NULL))
);
CREATE INDEX interaction_participants_by_interaction ON interaction_participants (interaction_id);
CREATE INDEX interaction_participants_by_client ON interaction_participants (client_id);
CREATE INDEX interaction_participants_by_user ON interaction_participants (user_id);
-- Reminders: `remind_at` is when the assignee (or author) is notified; `reminded_at` is set
-- once the notification exists, so a restart never reminds twice.
ALTER TABLE interactions ADD COLUMN remind_at TIMESTAMP;
ALTER TABLE interactions ADD COLUMN reminded_at TIMESTAMP;
-- Where a meeting takes place, and the id an external appointment system or an imported
-- invitation gave it (one interaction per external id and organization).
ALTER TABLE interactions ADD COLUMN location TEXT;
ALTER TABLE interactions ADD COLUMN external_id TEXT;
CREATE UNIQUE INDEX interactions_external ON interactions (organization_id, external_id);
CREATE INDEX interactions_reminders ON interactions (remind_at);
CREATE INDEX interactions_by_deal ON interactions (opportunity_id, occurred_at);
