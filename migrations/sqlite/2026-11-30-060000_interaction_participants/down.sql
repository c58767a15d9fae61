DROP INDEX interactions_by_deal;
DROP INDEX interactions_reminders;
DROP INDEX interactions_external;
ALTER TABLE interactions DROP COLUMN external_id;
ALTER TABLE interactions DROP COLUMN location;
ALTER TABLE interactions DROP COLUMN reminded_at;
ALTER TABLE interactions DROP COLUMN remind_at;
DROP TABLE interaction_participants;
