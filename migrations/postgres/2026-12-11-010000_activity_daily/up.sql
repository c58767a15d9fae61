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

-- why statement-level with transition tables: an import's COPY of a thousand activities
-- makes one grouped upsert, not a thousand; the counter rows are taken in key order within
-- each statement, so two statements moving activities in opposite directions cannot
-- deadlock; and an edit that moves no count (a subject, notes) touches no counter row.
CREATE FUNCTION activity_daily_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO activity_daily (organization_id, day, user_id, kind, status, n)
        SELECT organization_id, CAST(occurred_at AS DATE), COALESCE(user_id, ''), kind, status, COUNT(*)
        FROM new_rows WHERE deleted_at IS NULL
        GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT (organization_id, day, user_id, kind, status)
        DO UPDATE SET n = activity_daily.n + EXCLUDED.n;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO activity_daily (organization_id, day, user_id, kind, status, n)
        SELECT organization_id, CAST(occurred_at AS DATE), COALESCE(user_id, ''), kind, status, -COUNT(*)
        FROM old_rows WHERE deleted_at IS NULL
        GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT (organization_id, day, user_id, kind, status)
        DO UPDATE SET n = activity_daily.n + EXCLUDED.n;
    ELSE
        INSERT INTO activity_daily (organization_id, day, user_id, kind, status, n)
        SELECT organization_id, day, user_id, kind, status, SUM(d) FROM (
            SELECT organization_id, CAST(occurred_at AS DATE) AS day, COALESCE(user_id, '') AS user_id,
                   kind, status, -1 AS d
            FROM old_rows WHERE deleted_at IS NULL
            UNION ALL
            SELECT organization_id, CAST(occurred_at AS DATE), COALESCE(user_id, ''), kind, status, 1
            FROM new_rows WHERE deleted_at IS NULL
        ) moved
        GROUP BY 1, 2, 3, 4, 5 HAVING SUM(d) <> 0 ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT (organization_id, day, user_id, kind, status)
        DO UPDATE SET n = activity_daily.n + EXCLUDED.n;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER activity_daily_insert AFTER INSERT ON interactions
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION activity_daily_apply();
CREATE TRIGGER activity_daily_update AFTER UPDATE ON interactions
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION activity_daily_apply();
CREATE TRIGGER activity_daily_delete AFTER DELETE ON interactions
REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION activity_daily_apply();
