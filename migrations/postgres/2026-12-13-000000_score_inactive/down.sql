CREATE INDEX client_scores_risk_idx ON client_scores (organization_id, churn_risk);
DROP INDEX client_scores_open_risk;
ALTER TABLE client_scores DROP COLUMN inactive;
