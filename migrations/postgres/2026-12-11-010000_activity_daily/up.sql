-- Activities counted per day, kind, status and person, kept by a trigger on every insert,
-- change and delete of an interaction (deleted ones are not counted). Reports, the dashboard
-- and the overview read these few rows per day instead of every activity in the period:
-- 90 days at 1M clients is over a million activities.
CREATE TABLE activity_daily (
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    day DATE NOT NULL,
    user_id TEXT NOT NULL DEFAULT '',
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    n BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (organization_id, day, user_id, kind, status)
);

-- why: the count below and the trigger must see the same rows; writers from instances still
-- running wait until this migration commits.
LOCK TABLE interactions IN SHARE ROW EXCLUSIVE MODE;

INSERT INTO activity_daily (organization_id, day, user_id, kind, status, n)
SELECT organization_id, CAST(occurred_at AS DATE), COALESCE(user_id, ''), kind, status, COUNT(*)
FROM interactions WHERE deleted_at IS NULL
GROUP BY organization_id, CAST(occurred_at AS DATE), COALESCE(user_id, ''), kind, status;

CREATE FUNCTION activity_daily_track() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    was_counted boolean := TG_OP <> 'INSERT' AND OLD.deleted_at IS NULL;
    is_counted boolean := TG_OP <> 'DELETE' AND NEW.deleted_at IS NULL;
    old_key text;
    new_key text;
BEGIN
    IF was_counted THEN
        old_key := OLD.organization_id || '/' || CAST(OLD.occurred_at AS DATE) || '/'
            || COALESCE(OLD.user_id, '') || '/' || OLD.kind || '/' || OLD.status;
    END IF;
    IF is_counted THEN
        new_key := NEW.organization_id || '/' || CAST(NEW.occurred_at AS DATE) || '/'
            || COALESCE(NEW.user_id, '') || '/' || NEW.kind || '/' || NEW.status;
    END IF;
    IF was_counted AND is_counted AND old_key = new_key THEN
        RETURN NULL;
    END IF;
    -- why: two changes in opposite directions (planned→done and done→planned) would lock
    -- the same two rows in opposite orders and deadlock; the lower key goes first.
    IF was_counted AND (NOT is_counted OR old_key < new_key) THEN
        UPDATE activity_daily SET n = n - 1
        WHERE organization_id = OLD.organization_id AND day = CAST(OLD.occurred_at AS DATE)
          AND user_id = COALESCE(OLD.user_id, '') AND kind = OLD.kind AND status = OLD.status;
        was_counted := false;
    END IF;
    IF is_counted THEN
        INSERT INTO activity_daily (organization_id, day, user_id, kind, status, n)
        VALUES (NEW.organization_id, CAST(NEW.occurred_at AS DATE), COALESCE(NEW.user_id, ''),
                NEW.kind, NEW.status, 1)
        ON CONFLICT (organization_id, day, user_id, kind, status)
        DO UPDATE SET n = activity_daily.n + 1;
    END IF;
    IF was_counted THEN
        UPDATE activity_daily SET n = n - 1
        WHERE organization_id = OLD.organization_id AND day = CAST(OLD.occurred_at AS DATE)
          AND user_id = COALESCE(OLD.user_id, '') AND kind = OLD.kind AND status = OLD.status;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER activity_daily_track
AFTER INSERT OR DELETE OR UPDATE OF organization_id, occurred_at, user_id, kind, status, deleted_at
ON interactions FOR EACH ROW EXECUTE FUNCTION activity_daily_track();
