-- A reassignment moves the scores' owner in the statement trigger that already pairs each
-- changed client's old and new rows (risk_counts_clients), instead of a row trigger.
--
-- why: the row trigger ran one UPDATE of client_scores per reassigned client, and each of
-- those fired client_scores' statement trigger with its own one-row transition tables. The
-- statement trigger reads the transition tables anyway (every update of a client pays for
-- them), so carrying the owner costs one grouped UPDATE per statement: a bulk reassignment
-- of 20,000 clients 2.7-2.9 s -> 1.9-2.1 s on a quiet 2-core machine.

DROP TRIGGER client_scores_owner ON clients;
DROP FUNCTION client_scores_owner();

CREATE OR REPLACE FUNCTION risk_counts_clients() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Each client whose counting key (owner; live and not inactive) moved, with the key
    -- before and after; only those probe their score, and those whose owner moved carry
    -- the new owner to it.
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
    ),
    -- The scores follow their clients' owners (the index a rep's "at risk" list reads).
    owners AS (
        UPDATE client_scores s SET owner = m.new_owner
        FROM moved m
        WHERE s.client_id = m.id AND s.owner <> m.new_owner
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
