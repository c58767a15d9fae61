DROP INDEX client_scores_risk_idx;
DROP INDEX interactions_report_idx;
