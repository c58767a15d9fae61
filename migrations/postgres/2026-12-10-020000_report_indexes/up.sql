-- Reports count activities in a period by kind, status and person: with these columns in
-- one index the count reads the index alone (1.2M activities in 90 days at 1M clients took
-- 4 s with a row lookup each).
CREATE INDEX interactions_report_idx ON interactions (organization_id, occurred_at, kind, status, user_id) WHERE deleted_at IS NULL;
-- "Clients at risk" counts scores of 50 and up without reading every score.
CREATE INDEX client_scores_risk_idx ON client_scores (organization_id, churn_risk);
