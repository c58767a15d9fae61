DROP INDEX interactions_activity_idx;
DROP INDEX opportunities_age_idx;
