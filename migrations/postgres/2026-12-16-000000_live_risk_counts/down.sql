DROP TRIGGER risk_counts_client_delete ON clients;
DROP FUNCTION risk_counts_client_gone();
DROP TRIGGER risk_counts_client_update ON clients;
DROP FUNCTION risk_counts_clients();
DROP TRIGGER risk_counts_score_delete ON client_scores;
DROP TRIGGER risk_counts_score_update ON client_scores;
DROP TRIGGER risk_counts_score_insert ON client_scores;
DROP FUNCTION risk_counts_scores();
