-- The functions as migrations client_last_contact and live_risk_counts wrote them.

CREATE OR REPLACE FUNCTION clients_last_contact_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE clients c SET last_contact_at = m.latest
        FROM (SELECT client_id, MAX(occurred_at) AS latest FROM new_rows
              WHERE deleted_at IS NULL AND status = 'completed' AND kind NOT IN ('task', 'event')
              GROUP BY client_id ORDER BY client_id) m
        WHERE c.id = m.client_id AND (c.last_contact_at IS NULL OR c.last_contact_at < m.latest);
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE clients c SET last_contact_at = (
            SELECT MAX(i.occurred_at) FROM interactions i
            WHERE i.client_id = c.id AND i.deleted_at IS NULL AND i.status = 'completed'
              AND i.kind NOT IN ('task', 'event'))
        WHERE c.id IN (SELECT client_id FROM old_rows
                       WHERE deleted_at IS NULL AND status = 'completed'
                         AND kind NOT IN ('task', 'event'));
    ELSE
        UPDATE clients c SET last_contact_at = m.latest
        FROM (SELECT t.cid, (SELECT MAX(i.occurred_at) FROM interactions i
                             WHERE i.client_id = t.cid AND i.deleted_at IS NULL
                               AND i.status = 'completed' AND i.kind NOT IN ('task', 'event'))
                            AS latest
              FROM (SELECT o.client_id AS cid FROM old_rows o JOIN new_rows n ON n.id = o.id
                    WHERE (o.client_id, o.kind, o.status, o.occurred_at, o.deleted_at)
                          IS DISTINCT FROM (n.client_id, n.kind, n.status, n.occurred_at, n.deleted_at)
                    UNION
                    SELECT n.client_id FROM old_rows o JOIN new_rows n ON n.id = o.id
                    WHERE (o.client_id, o.kind, o.status, o.occurred_at, o.deleted_at)
                          IS DISTINCT FROM (n.client_id, n.kind, n.status, n.occurred_at, n.deleted_at)
                   ) t
              ORDER BY t.cid) m
        WHERE c.id = m.cid AND c.last_contact_at IS DISTINCT FROM m.latest;
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION risk_counts_scores() RETURNS trigger LANGUAGE plpgsql AS $$
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

CREATE OR REPLACE FUNCTION risk_counts_clients() RETURNS trigger LANGUAGE plpgsql AS $$
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
