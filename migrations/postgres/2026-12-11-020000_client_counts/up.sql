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

CREATE FUNCTION client_counts_track() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    was_counted boolean := TG_OP <> 'INSERT' AND OLD.deleted_at IS NULL;
    is_counted boolean := TG_OP <> 'DELETE' AND NEW.deleted_at IS NULL;
    old_key text;
    new_key text;
BEGIN
    IF was_counted THEN
        old_key := OLD.organization_id || '/' || COALESCE(OLD.assigned_to, '') || '/' || OLD.status;
    END IF;
    IF is_counted THEN
        new_key := NEW.organization_id || '/' || COALESCE(NEW.assigned_to, '') || '/' || NEW.status;
    END IF;
    IF was_counted AND is_counted AND old_key = new_key THEN
        RETURN NULL;
    END IF;
    -- why: two changes in opposite directions (lead→customer and customer→lead) would
    -- lock the same two rows in opposite orders and deadlock; the lower key goes first.
    IF was_counted AND (NOT is_counted OR old_key < new_key) THEN
        UPDATE client_counts SET n = n - 1
        WHERE organization_id = OLD.organization_id AND owner = COALESCE(OLD.assigned_to, '')
          AND status = OLD.status;
        was_counted := false;
    END IF;
    IF is_counted THEN
        INSERT INTO client_counts (organization_id, owner, status, n)
        VALUES (NEW.organization_id, COALESCE(NEW.assigned_to, ''), NEW.status, 1)
        ON CONFLICT (organization_id, owner, status) DO UPDATE SET n = client_counts.n + 1;
    END IF;
    IF was_counted THEN
        UPDATE client_counts SET n = n - 1
        WHERE organization_id = OLD.organization_id AND owner = COALESCE(OLD.assigned_to, '')
          AND status = OLD.status;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER client_counts_track
AFTER INSERT OR DELETE OR UPDATE OF organization_id, assigned_to, status, deleted_at
ON clients FOR EACH ROW EXECUTE FUNCTION client_counts_track();

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
