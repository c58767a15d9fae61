LOCK TABLE client_counts IN SHARE ROW EXCLUSIVE MODE;

CREATE TEMPORARY TABLE client_counts_summed AS
SELECT organization_id, owner, status, SUM(n) AS n
FROM client_counts GROUP BY organization_id, owner, status;
DELETE FROM client_counts;
ALTER TABLE client_counts DROP CONSTRAINT client_counts_pkey;
ALTER TABLE client_counts DROP COLUMN slot;
ALTER TABLE client_counts ADD PRIMARY KEY (organization_id, owner, status);
INSERT INTO client_counts (organization_id, owner, status, n)
SELECT organization_id, owner, status, n FROM client_counts_summed;
DROP TABLE client_counts_summed;

CREATE OR REPLACE FUNCTION client_counts_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO client_counts (organization_id, owner, status, n)
        SELECT organization_id, COALESCE(assigned_to, ''), status, COUNT(*)
        FROM new_rows WHERE deleted_at IS NULL
        GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (organization_id, owner, status) DO UPDATE SET n = client_counts.n + EXCLUDED.n;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO client_counts (organization_id, owner, status, n)
        SELECT organization_id, COALESCE(assigned_to, ''), status, -COUNT(*)
        FROM old_rows WHERE deleted_at IS NULL
        GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (organization_id, owner, status) DO UPDATE SET n = client_counts.n + EXCLUDED.n;
    ELSE
        INSERT INTO client_counts (organization_id, owner, status, n)
        SELECT organization_id, owner, status, SUM(d) FROM (
            SELECT organization_id, COALESCE(assigned_to, '') AS owner, status, -1 AS d
            FROM old_rows WHERE deleted_at IS NULL
            UNION ALL
            SELECT organization_id, COALESCE(assigned_to, ''), status, 1
            FROM new_rows WHERE deleted_at IS NULL
        ) moved
        GROUP BY 1, 2, 3 HAVING SUM(d) <> 0 ORDER BY 1, 2, 3
        ON CONFLICT (organization_id, owner, status) DO UPDATE SET n = client_counts.n + EXCLUDED.n;
    END IF;
    RETURN NULL;
END
$$;
