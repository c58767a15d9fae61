DROP TRIGGER risk_counts_client_delete;
DROP TRIGGER risk_counts_client_update;
DROP TRIGGER risk_counts_score_update;
DROP TRIGGER risk_counts_score_delete;
DROP TRIGGER risk_counts_score_insert;
