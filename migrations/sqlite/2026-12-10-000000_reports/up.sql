-- Saved custom reports: a definition (JSON, see domain/reports/custom.rs) with a name,
-- private to its author unless shared with a role or with everyone.
CREATE TABLE reports (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    definition TEXT NOT NULL,
    -- NULL: only its author; a role name (sales_rep, manager, ...); or 'everyone'.
    shared_with TEXT,
    created_by TEXT REFERENCES users(id) ON DELETE SET NULL,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX reports_name ON reports (organization_id, lower(name));

-- Dashboards: an ordered grid of tiles (JSON: saved reports, standard reports, KPI tiles).
CREATE TABLE dashboards (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    tiles TEXT NOT NULL,
    shared_with TEXT,
    created_by TEXT REFERENCES users(id) ON DELETE SET NULL,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX dashboards_name ON dashboards (organization_id, lower(name));

-- A dashboard e-mailed on a schedule (its tiles as CSV attachments) to chosen members.
CREATE TABLE report_schedules (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    dashboard_id TEXT NOT NULL REFERENCES dashboards(id) ON DELETE CASCADE,
    -- JSON array of user ids.
    recipients TEXT NOT NULL,
    -- daily | weekly | monthly
    cadence TEXT NOT NULL,
    -- 1 (Monday) to 7 for weekly; day of the month (1-28) for monthly.
    day INTEGER NOT NULL DEFAULT 1,
    -- Hour of the day, UTC.
    hour INTEGER NOT NULL DEFAULT 7,
    next_run_at TIMESTAMP NOT NULL,
    last_run_at TIMESTAMP,
    last_error TEXT,
    created_by TEXT REFERENCES users(id) ON DELETE SET NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX report_schedules_due ON report_schedules (next_run_at);
CREATE INDEX report_schedules_dashboard ON report_schedules (dashboard_id);
