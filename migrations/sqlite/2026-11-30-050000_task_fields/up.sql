-- Tasks are interactions of kind "task" with a due date, a priority and an assignee.
ALTER TABLE interactions ADD COLUMN due_at TIMESTAMP;
ALTER TABLE interactions ADD COLUMN priority TEXT;
ALTER TABLE interactions ADD COLUMN assignee_id TEXT REFERENCES users(id) ON DELETE SET NULL;
CREATE INDEX interactions_tasks ON interactions (organization_id, assignee_id, status, due_at);
