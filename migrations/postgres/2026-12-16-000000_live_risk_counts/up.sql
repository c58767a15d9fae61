-- Clients at risk per owner, kept by triggers as clients and scores change (trashed,
-- restored, reassigned, marked inactive, rescored, deleted) instead of only after each
-- scoring. The regroup after a full scoring stays: it is the reconciliation, and it also
-- settles what two transactions changing a client and its score at the same moment could
-- leave off by one (each trigger reads the other table as of its own statement).
--
-- A client counts when its score's churn risk is 50 or more (scores::AT_RISK), it is not in
-- the trash and not inactive; it counts under its owner ('' for none).
--
-- why statement-level with transition tables, as client_counts: a scoring page stores a
-- thousand scores in one statement and makes one grouped upsert, taken in key order.
-- A client's delete is counted by a row trigger before it happens (its score is still
-- there); the cascade that then deletes the score finds the client gone and counts nothing.

CREATE FUNCTION risk_counts_scores() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO risk_counts (organization_id, owner, n)
        SELECT c.organization_id, COALESCE(c.assigned_to, ''), COUNT(*)
        FROM new_rows s JOIN clients c ON c.id = s.client_id
        WHERE s.churn_risk >= 50 AND c.deleted_at IS NULL AND c.status <> 'inactive'
        GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (organization_id, owner) DO UPDATE SET n = risk_counts.n + EXCLUDED.n;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO risk_counts (organization_id, owner, n)
        SELECT c.organization_id, COALESCE(c.assigned_to, ''), -COUNT(*)
        FROM old_rows s JOIN clients c ON c.id = s.client_id
        WHERE s.churn_risk >= 50 AND c.deleted_at IS NULL AND c.status <> 'inactive'
        GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (organization_id, owner) DO UPDATE SET n = risk_counts.n + EXCLUDED.n;
    ELSE
        INSERT INTO risk_counts (organization_id, owner, n)
        SELECT c.organization_id, COALESCE(c.assigned_to, ''), SUM(m.d)
        FROM (
            SELECT o.client_id, CASE WHEN n.churn_risk >= 50 THEN 1 ELSE -1 END AS d
            FROM old_rows o JOIN new_rows n ON n.client_id = o.client_id
            WHERE (o.churn_risk >= 50) <> (n.churn_risk >= 50)
        ) m JOIN clients c ON c.id = m.client_id
        WHERE c.deleted_at IS NULL AND c.status <> 'inactive'
        GROUP BY 1, 2 HAVING SUM(m.d) <> 0 ORDER BY 1, 2
        ON CONFLICT (organization_id, owner) DO UPDATE SET n = risk_counts.n + EXCLUDED.n;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER risk_counts_score_insert AFTER INSERT ON client_scores
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION risk_counts_scores();
CREATE TRIGGER risk_counts_score_update AFTER UPDATE ON client_scores
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION risk_counts_scores();
CREATE TRIGGER risk_counts_score_delete AFTER DELETE ON client_scores
REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION risk_counts_scores();

-- A change of owner, status or trash: only the clients whose counting key moved probe
-- their score (an update of a name or of the last contact probes nothing).
CREATE FUNCTION risk_counts_clients() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO risk_counts (organization_id, owner, n)
    SELECT organization_id, owner, SUM(d) FROM (
        SELECT o.organization_id, COALESCE(o.assigned_to, '') AS owner, -1 AS d
        FROM old_rows o JOIN new_rows n ON n.id = o.id
        JOIN client_scores s ON s.client_id = o.id
        WHERE (o.assigned_to IS DISTINCT FROM n.assigned_to OR o.status <> n.status
               OR (o.deleted_at IS NULL) <> (n.deleted_at IS NULL))
          AND s.churn_risk >= 50 AND o.deleted_at IS NULL AND o.status <> 'inactive'
        UNION ALL
        SELECT n.organization_id, COALESCE(n.assigned_to, ''), 1
        FROM old_rows o JOIN new_rows n ON n.id = o.id
        JOIN client_scores s ON s.client_id = n.id
        WHERE (o.assigned_to IS DISTINCT FROM n.assigned_to OR o.status <> n.status
               OR (o.deleted_at IS NULL) <> (n.deleted_at IS NULL))
          AND s.churn_risk >= 50 AND n.deleted_at IS NULL AND n.status <> 'inactive'
    ) moved
    GROUP BY 1, 2 HAVING SUM(d) <> 0 ORDER BY 1, 2
    ON CONFLICT (organization_id, owner) DO UPDATE SET n = risk_counts.n + EXCLUDED.n;
    RETURN NULL;
END
$$;

CREATE TRIGGER risk_counts_client_update AFTER UPDATE ON clients
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION risk_counts_clients();

CREATE FUNCTION risk_counts_client_gone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.deleted_at IS NULL AND OLD.status <> 'inactive' THEN
        INSERT INTO risk_counts (organization_id, owner, n)
        SELECT OLD.organization_id, COALESCE(OLD.assigned_to, ''), -1
        FROM client_scores s WHERE s.client_id = OLD.id AND s.churn_risk >= 50
        ON CONFLICT (organization_id, owner) DO UPDATE SET n = risk_counts.n + EXCLUDED.n;
    END IF;
    RETURN OLD;
END
$$;

CREATE TRIGGER risk_counts_client_delete BEFORE DELETE ON clients
FOR EACH ROW EXECUTE FUNCTION risk_counts_client_gone();
