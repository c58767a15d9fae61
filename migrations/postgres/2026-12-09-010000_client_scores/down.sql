DROP TABLE score_runs;
DROP TABLE client_scores;
