-- Whether the client was inactive when its scores were computed. A client marked inactive
-- scores a churn risk of 100 and never belongs on an "at risk" list, but a list ordered by
-- risk met every one of them first: 200,000 inactive clients at 1M made the dashboard read
-- them all. The list reads the active clients' entries of this index in order and stops at
-- its limit; it still checks the client's status now, so the flag only has to be right for
-- speed, not for correctness.
ALTER TABLE client_scores ADD COLUMN inactive BOOLEAN NOT NULL DEFAULT 0;
UPDATE client_scores SET inactive = 1
    WHERE client_id IN (SELECT id FROM clients WHERE status = 'inactive');
CREATE INDEX client_scores_open_risk ON client_scores (organization_id, inactive, churn_risk, client_id);
-- The same as client_scores_risk, made twice; one is enough to keep up on every write.
DROP INDEX client_scores_risk_idx;
