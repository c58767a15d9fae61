DROP TRIGGER client_scores_owner ON clients;
DROP FUNCTION client_scores_owner();
DROP INDEX client_scores_owner_risk;
ALTER TABLE client_scores DROP COLUMN owner;
