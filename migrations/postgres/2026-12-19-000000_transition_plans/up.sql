-- The statements of the statement triggers that compared a transition table's old rows
-- with its new ones by a join (old_rows JOIN new_rows ON id) now pair them by one grouping
-- over both instead.
--
-- why: PL/pgSQL plans a static statement once per session and keeps the plan, whatever
-- the size of the transition tables later. A trigger first run for a one-row update had
-- planned the join as a nested loop over the other table's tuplestore; on the same pooled
-- connection an update of 20,000 rows then took 19 s, and of a million rows (the last
-- contact of every client after a bulk load of interactions) hours. A grouping is linear
-- whichever way it was planned; the statements then probe an indexed table per changed
-- row, which stays linear too. (EXECUTE, planning each time, was measured as well: it
-- costs a plan per statement, and a client's owner moves its score by a row trigger, so a
-- bulk reassignment planned once per client.)

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
        -- Interactions whose client, kind, status, date or trash moved, with both clients.
        UPDATE clients c SET last_contact_at = m.latest
        FROM (SELECT t.cid, (SELECT MAX(i.occurred_at) FROM interactions i
                             WHERE i.client_id = t.cid AND i.deleted_at IS NULL
                               AND i.status = 'completed' AND i.kind NOT IN ('task', 'event'))
                            AS latest
              FROM (SELECT DISTINCT unnest(ARRAY[p.old_cid, p.new_cid]) AS cid
                    FROM (SELECT x.id,
                                 MAX(x.client_id) FILTER (WHERE x.d < 0) AS old_cid,
                                 MAX(x.client_id) FILTER (WHERE x.d > 0) AS new_cid
                          FROM (SELECT id, client_id, -1 AS d,
                                       ROW(client_id, kind, status, occurred_at, deleted_at)::text AS k
                                FROM old_rows
                                UNION ALL
                                SELECT id, client_id, 1,
                                       ROW(client_id, kind, status, occurred_at, deleted_at)::text
                                FROM new_rows) x
                          GROUP BY x.id HAVING MIN(x.k) <> MAX(x.k)) p
                   ) t
              WHERE t.cid IS NOT NULL
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
        -- A client's score crossed the line one way or the other: -1 or +1 under its owner.
        INSERT INTO risk_counts (organization_id, owner, n)
        SELECT c.organization_id, COALESCE(c.assigned_to, ''), SUM(m.d)
        FROM (SELECT client_id, SUM(d) AS d
              FROM (SELECT client_id, -1 AS d FROM old_rows WHERE churn_risk >= 50
                    UNION ALL
                    SELECT client_id, 1 FROM new_rows WHERE churn_risk >= 50) x
              GROUP BY client_id HAVING SUM(d) <> 0) m
        JOIN clients c ON c.id = m.client_id
        WHERE c.deleted_at IS NULL AND c.status <> 'inactive'
        GROUP BY 1, 2 HAVING SUM(m.d) <> 0 ORDER BY 1, 2
        ON CONFLICT (organization_id, owner) DO UPDATE SET n = risk_counts.n + EXCLUDED.n;
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION risk_counts_clients() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Each client whose counting key (owner; live and not inactive) moved, with the key
    -- before and after; only those probe their score.
    WITH moved AS (
        SELECT x.id, MIN(x.organization_id) AS organization_id,
               MAX(x.owner) FILTER (WHERE x.d < 0) AS old_owner,
               bool_or(x.counted) FILTER (WHERE x.d < 0) AS old_counted,
               MAX(x.owner) FILTER (WHERE x.d > 0) AS new_owner,
               bool_or(x.counted) FILTER (WHERE x.d > 0) AS new_counted
        FROM (SELECT id, organization_id, COALESCE(assigned_to, '') AS owner,
                     deleted_at IS NULL AND status <> 'inactive' AS counted, -1 AS d
              FROM old_rows
              UNION ALL
              SELECT id, organization_id, COALESCE(assigned_to, ''),
                     deleted_at IS NULL AND status <> 'inactive', 1
              FROM new_rows) x
        GROUP BY x.id
        HAVING (MAX(x.owner) FILTER (WHERE x.d < 0), bool_or(x.counted) FILTER (WHERE x.d < 0))
               IS DISTINCT FROM
               (MAX(x.owner) FILTER (WHERE x.d > 0), bool_or(x.counted) FILTER (WHERE x.d > 0))
    )
    INSERT INTO risk_counts (organization_id, owner, n)
    SELECT organization_id, owner, SUM(d) FROM (
        SELECT m.organization_id, m.old_owner AS owner, -1 AS d
        FROM moved m JOIN client_scores s ON s.client_id = m.id
        WHERE m.old_counted AND s.churn_risk >= 50
        UNION ALL
        SELECT m.organization_id, m.new_owner, 1
        FROM moved m JOIN client_scores s ON s.client_id = m.id
        WHERE m.new_counted AND s.churn_risk >= 50
    ) shifted
    GROUP BY 1, 2 HAVING SUM(d) <> 0 ORDER BY 1, 2
    ON CONFLICT (organization_id, owner) DO UPDATE SET n = risk_counts.n + EXCLUDED.n;
    RETURN NULL;
END
$$;
