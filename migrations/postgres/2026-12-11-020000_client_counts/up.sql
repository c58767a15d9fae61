-- Clients (not in the trash) counted per owner and status, kept by a trigger on every
-- insert, change and delete; and clients at risk per owner, written after each scoring.
-- The overview and the dashboard's figures read these few rows instead of counting a
-- million clients on every visit.
CREATE TABLE client_counts (
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    owner TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    n BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (organization_id, owner, status)
);

-- why: the count below and the trigger must see the same rows; writers from instances still
-- running wait until this migration commits.
LOCK TABLE clients IN SHARE ROW EXCLUSIVE MODE;

INSERT INTO client_counts (organization_id, owner, status, n)
SELECT organization_id, COALESCE(assigned_to, ''), status, COUNT(*)
FROM clients WHERE deleted_at IS NULL
GROUP BY organization_id, COALESCE(assigned_to, ''), status;

-- why statement-level with transition tables: an import's COPY of a thousand clients makes
-- one grouped upsert, not a thousand; the counter rows are taken in key order within each
-- statement, so two statements moving clients in opposite directions cannot deadlock; and
-- an update that moves no count (a name, a phone) touches no counter row at all.
CREATE FUNCTION client_counts_apply() RETURNS trigger LANGUAGE plpgsql AS $$
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

CREATE TRIGGER client_counts_insert AFTER INSERT ON clients
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION client_counts_apply();
CREATE TRIGGER client_counts_update AFTER UPDATE ON clients
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION client_counts_apply();
CREATE TRIGGER client_counts_delete AFTER DELETE ON clients
REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION client_counts_apply();

CREATE TABLE risk_counts (
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    owner TEXT NOT NULL DEFAULT '',
    n BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (organization_id, owner)
);

INSERT INTO risk_counts (organization_id, owner, n)
SELECT s.organization_id, COALESCE(c.assigned_to, ''), COUNT(*)
FROM client_scores s JOIN clients c ON c.id = s.client_id
WHERE s.churn_risk >= 50 AND c.deleted_at IS NULL AND c.status <> 'inactive'
GROUP BY s.organization_id, COALESCE(c.assigned_to, '');

-- The open pipeline sums open deals per currency from this index alone.
CREATE INDEX opportunities_open_value_idx ON opportunities (organization_id, status, currency, assigned_to, value_cents)
WHERE deleted_at IS NULL;
