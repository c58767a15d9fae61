-- Each score carries its client's owner, so a rep's "at risk" list reads that rep's entries
-- of an index in risk order and stops at its limit. Through the organization's index
-- (client_scores_open_risk) and a check of each client's owner, a rep with few clients at
-- risk read every other rep's entries first: the whole organization's at-risk clients for
-- the five a rep's dashboard shows.
--
-- The scoring writes the owner with the score; a reassignment moves it here. why a row
-- trigger with a column list: it costs nothing to the updates that leave the owner alone
-- (names, last contact, tags), which a statement trigger with transition tables, the only
-- kind PostgreSQL allows to see both rows at once, would not.
ALTER TABLE client_scores ADD COLUMN owner TEXT NOT NULL DEFAULT '';
UPDATE client_scores s SET owner = c.assigned_to
    FROM clients c WHERE c.id = s.client_id AND c.assigned_to IS NOT NULL;
CREATE INDEX client_scores_owner_risk
    ON client_scores (organization_id, owner, inactive, churn_risk, client_id);

CREATE FUNCTION client_scores_owner() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE client_scores SET owner = COALESCE(NEW.assigned_to, '') WHERE client_id = NEW.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER client_scores_owner AFTER UPDATE OF assigned_to ON clients
FOR EACH ROW WHEN (OLD.assigned_to IS DISTINCT FROM NEW.assigned_to)
EXECUTE FUNCTION client_scores_owner();

ANALYZE client_scores;
