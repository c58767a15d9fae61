-- Clients at risk per owner, kept by triggers as clients and scores change (trashed,
-- restored, reassigned, marked inactive, rescored, deleted) instead of only after each
-- scoring. The regroup after a full scoring stays: it is the reconciliation.
--
-- A client counts when its score's churn risk is 50 or more (scores::AT_RISK), it is not in
-- the trash and not inactive; it counts under its owner ('' for none).
--
-- A client's delete is counted before it happens (its score is still there); the cascade
-- that then deletes the score finds the client gone and counts nothing, so each delete is
-- counted once.

CREATE TRIGGER risk_counts_score_insert AFTER INSERT ON client_scores
WHEN NEW.churn_risk >= 50
BEGIN
    INSERT INTO risk_counts (organization_id, owner, n)
    SELECT c.organization_id, COALESCE(c.assigned_to, ''), 1 FROM clients c
    WHERE c.id = NEW.client_id AND c.deleted_at IS NULL AND c.status <> 'inactive'
    ON CONFLICT (organization_id, owner) DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER risk_counts_score_delete AFTER DELETE ON client_scores
WHEN OLD.churn_risk >= 50
BEGIN
    INSERT INTO risk_counts (organization_id, owner, n)
    SELECT c.organization_id, COALESCE(c.assigned_to, ''), -1 FROM clients c
    WHERE c.id = OLD.client_id AND c.deleted_at IS NULL AND c.status <> 'inactive'
    ON CONFLICT (organization_id, owner) DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER risk_counts_score_update AFTER UPDATE OF churn_risk ON client_scores
WHEN (OLD.churn_risk >= 50) <> (NEW.churn_risk >= 50)
BEGIN
    INSERT INTO risk_counts (organization_id, owner, n)
    SELECT c.organization_id, COALESCE(c.assigned_to, ''),
           CASE WHEN NEW.churn_risk >= 50 THEN 1 ELSE -1 END
    FROM clients c
    WHERE c.id = NEW.client_id AND c.deleted_at IS NULL AND c.status <> 'inactive'
    ON CONFLICT (organization_id, owner) DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER risk_counts_client_update
AFTER UPDATE OF assigned_to, status, deleted_at ON clients
WHEN OLD.assigned_to IS NOT NEW.assigned_to OR OLD.status IS NOT NEW.status
  OR (OLD.deleted_at IS NULL) <> (NEW.deleted_at IS NULL)
BEGIN
    INSERT INTO risk_counts (organization_id, owner, n)
    SELECT OLD.organization_id, COALESCE(OLD.assigned_to, ''), -1 FROM client_scores s
    WHERE s.client_id = OLD.id AND s.churn_risk >= 50
      AND OLD.deleted_at IS NULL AND OLD.status <> 'inactive'
    ON CONFLICT (organization_id, owner) DO UPDATE SET n = n + excluded.n;
    INSERT INTO risk_counts (organization_id, owner, n)
    SELECT NEW.organization_id, COALESCE(NEW.assigned_to, ''), 1 FROM client_scores s
    WHERE s.client_id = NEW.id AND s.churn_risk >= 50
      AND NEW.deleted_at IS NULL AND NEW.status <> 'inactive'
    ON CONFLICT (organization_id, owner) DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER risk_counts_client_delete BEFORE DELETE ON clients
WHEN OLD.deleted_at IS NULL AND OLD.status <> 'inactive'
BEGIN
    INSERT INTO risk_counts (organization_id, owner, n)
    SELECT OLD.organization_id, COALESCE(OLD.assigned_to, ''), -1 FROM client_scores s
    WHERE s.client_id = OLD.id AND s.churn_risk >= 50
    ON CONFLICT (organization_id, owner) DO UPDATE SET n = n + excluded.n;
END;
