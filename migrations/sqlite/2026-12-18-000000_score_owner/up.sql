-- Each score carries its client's owner, so a rep's "at risk" list reads that rep's entries
-- of an index in risk order and stops at its limit (see the PostgreSQL migration of the
-- same name for why). The scoring writes it with the score; a reassignment moves it here.
ALTER TABLE client_scores ADD COLUMN owner TEXT NOT NULL DEFAULT '';
UPDATE client_scores SET owner = COALESCE(
    (SELECT c.assigned_to FROM clients c WHERE c.id = client_scores.client_id), '');
CREATE INDEX client_scores_owner_risk
    ON client_scores (organization_id, owner, inactive, churn_risk, client_id);

CREATE TRIGGER client_scores_owner AFTER UPDATE OF assigned_to ON clients
WHEN OLD.assigned_to IS NOT NEW.assigned_to
BEGIN
    UPDATE client_scores SET owner = COALESCE(NEW.assigned_to, '') WHERE client_id = NEW.id;
END;
