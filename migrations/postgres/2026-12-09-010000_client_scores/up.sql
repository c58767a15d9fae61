-- Each client's engagement score, lifetime value and churn risk, with the factors that
-- produced them (JSON), computed nightly set-at-a-time and on demand for one client.
CREATE TABLE client_scores (
    client_id TEXT PRIMARY KEY NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    engagement INTEGER NOT NULL,
    -- Realised plus expected, in the organization's currency (minor units).
    lifetime_value_cents BIGINT NOT NULL,
    realised_cents BIGINT NOT NULL,
    currency TEXT NOT NULL,
    churn_risk INTEGER NOT NULL,
    factors TEXT NOT NULL,
    computed_at TIMESTAMP NOT NULL
);
CREATE INDEX client_scores_risk ON client_scores (organization_id, churn_risk);
CREATE INDEX client_scores_engagement ON client_scores (organization_id, engagement);
CREATE INDEX client_scores_value ON client_scores (organization_id, lifetime_value_cents);

-- When each organization's scores were last computed in full.
CREATE TABLE score_runs (
    organization_id TEXT PRIMARY KEY NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    started_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP,
    clients BIGINT NOT NULL DEFAULT 0
);
