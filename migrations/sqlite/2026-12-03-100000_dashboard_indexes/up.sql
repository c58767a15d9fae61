-- The dashboard's bounded reads: a pipeline's open deals by how long they sat in their
-- stage (rotting deals, oldest first), and a person's logged activities by date.
CREATE INDEX opportunities_age_idx ON opportunities (organization_id, status, pipeline_id, stage_entered_at) WHERE deleted_at IS NULL;
CREATE INDEX interactions_activity_idx ON interactions (organization_id, user_id, occurred_at) WHERE deleted_at IS NULL;
