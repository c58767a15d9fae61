-- Workflows: a trigger, conditions and ordered steps per organization. Editing makes a new
-- version; a run keeps the version it started with. Runs are written in the transaction of
-- the change that triggers them (as webhook deliveries are) and carried out by a worker
-- afterwards, one step per transaction, so a restart resumes without repeating a step.
CREATE TABLE workflows (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    -- The current version's number and trigger type (copied from it, so matching an event
    -- reads one index).
    version INTEGER NOT NULL,
    trigger_type TEXT NOT NULL,
    -- SHA-256 of the secret in the workflow's incoming-webhook URL.
    hook_hash TEXT UNIQUE,
    -- Round robin: the member assigned last.
    last_assignee TEXT,
    -- Date and schedule triggers: how far the scan has looked.
    scanned_until TIMESTAMP,
    created_by TEXT REFERENCES users(id) ON DELETE SET NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    deleted_at TIMESTAMP
);
CREATE INDEX workflows_by_trigger ON workflows (organization_id, trigger_type, enabled);

CREATE TABLE workflow_versions (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    workflow_id TEXT NOT NULL REFERENCES workflows(id) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    -- {"trigger": {...}, "conditions": [[...], ...], "steps": [{...}, ...]}
    definition TEXT NOT NULL,
    created_by TEXT REFERENCES users(id) ON DELETE SET NULL,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (workflow_id, version)
);

CREATE TABLE workflow_runs (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    workflow_id TEXT NOT NULL REFERENCES workflows(id) ON DELETE CASCADE,
    version_id TEXT NOT NULL REFERENCES workflow_versions(id) ON DELETE CASCADE,
    -- client, opportunity, interaction, contract; none for a bare incoming webhook call
    record_type TEXT NOT NULL,
    record_id TEXT,
    -- The client the conditions and actions apply to.
    client_id TEXT,
    -- The event that started it (type, changes, an incoming call's body).
    event TEXT NOT NULL,
    -- How many workflow changes led to this one (loop protection).
    depth INTEGER NOT NULL,
    -- Date and schedule triggers: one run per (workflow, key).
    dedupe_key TEXT,
    -- pending, running, waiting, done, failed, skipped
    status TEXT NOT NULL,
    -- The next step to carry out.
    step INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    next_at TIMESTAMP,
    lease_until TIMESTAMP,
    error TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP,
    UNIQUE (workflow_id, dedupe_key)
);
CREATE INDEX workflow_runs_due ON workflow_runs (status, next_at);
CREATE INDEX workflow_runs_by_workflow ON workflow_runs (workflow_id, id);
CREATE INDEX workflow_runs_by_record ON workflow_runs (organization_id, record_id, id);

-- One row per step carried out, written in the step's own transaction: a step with a row is
-- never carried out again.
CREATE TABLE workflow_steps (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    run_id TEXT NOT NULL REFERENCES workflow_runs(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    kind TEXT NOT NULL,
    -- done, failed, skipped
    status TEXT NOT NULL,
    outcome TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    finished_at TIMESTAMP NOT NULL,
    UNIQUE (run_id, position)
);

-- Workflow rights follow webhook rights: those who may read or manage webhooks may do the
-- same with workflows.
INSERT INTO casbin_rules (id, ptype, v0, v1, v2, v3, v4, v5)
SELECT gen_random_uuid()::text, 'p', s.v0, s.v1, 'workflow', s.v3, '', ''
FROM casbin_rules s
WHERE s.ptype = 'p' AND s.v2 = 'webhook' AND s.v3 IN ('read', 'admin')
  AND NOT EXISTS (
    SELECT 1 FROM casbin_rules d
    WHERE d.ptype = 'p' AND d.v0 = s.v0 AND d.v1 = s.v1 AND d.v2 = 'workflow' AND d.v3 = s.v3
  );
UPDATE policy_revision SET revision = revision + 1;
