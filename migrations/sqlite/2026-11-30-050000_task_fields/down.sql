DROP INDEX interactions_tasks;
ALTER TABLE interactions DROP COLUMN assignee_id;
ALTER TABLE interactions DROP COLUMN priority;
ALTER TABLE interactions DROP COLUMN due_at;
