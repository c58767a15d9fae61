-- Clients (not in the trash) counted per owner and status, kept by triggers on every
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

INSERT INTO client_counts (organization_id, owner, status, n)
SELECT organization_id, COALESCE(assigned_to, ''), status, COUNT(*)
FROM clients WHERE deleted_at IS NULL
GROUP BY organization_id, COALESCE(assigned_to, ''), status;

CREATE TRIGGER client_counts_insert AFTER INSERT ON clients
WHEN NEW.deleted_at IS NULL
BEGIN
    INSERT INTO client_counts (organization_id, owner, status, n)
    VALUES (NEW.organization_id, COALESCE(NEW.assigned_to, ''), NEW.status, 1)
    ON CONFLICT (organization_id, owner, status) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER client_counts_delete AFTER DELETE ON clients
WHEN OLD.deleted_at IS NULL
BEGIN
    UPDATE client_counts SET n = n - 1
    WHERE organization_id = OLD.organization_id AND owner = COALESCE(OLD.assigned_to, '')
      AND status = OLD.status;
END;

CREATE TRIGGER client_counts_update
AFTER UPDATE OF organization_id, assigned_to, status, deleted_at ON clients
BEGIN
    UPDATE client_counts SET n = n - 1
    WHERE OLD.deleted_at IS NULL
      AND organization_id = OLD.organization_id AND owner = COALESCE(OLD.assigned_to, '')
      AND status = OLD.status;
    INSERT INTO client_counts (organization_id, owner, status, n)
    SELECT NEW.organization_id, COALESCE(NEW.assigned_to, ''), NEW.status, 1
    WHERE NEW.deleted_at IS NULL
    ON CONFLICT (organization_id, owner, status) DO UPDATE SET n = n + 1;
END;

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
