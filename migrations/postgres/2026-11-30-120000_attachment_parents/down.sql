DROP INDEX attachments_by_interaction;
DROP INDEX attachments_by_opportunity;
ALTER TABLE attachments DROP COLUMN interaction_id;
ALTER TABLE attachments DROP COLUMN opportunity_id;
