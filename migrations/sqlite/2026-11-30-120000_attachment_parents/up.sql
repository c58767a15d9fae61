-- A file can belong to a deal or an interaction as well as a client. It keeps the client
-- (the deal's or the interaction's) so a merge moves it and the client's trail shows it.
ALTER TABLE attachments ADD COLUMN opportunity_id TEXT REFERENCES opportunities(id) ON DELETE CASCADE;
ALTER TABLE attachments ADD COLUMN interaction_id TEXT REFERENCES interactions(id) ON DELETE CASCADE;
CREATE INDEX attachments_by_opportunity ON attachments (opportunity_id, created_at);
CREATE INDEX attachments_by_interaction ON attachments (interaction_id, created_at);
