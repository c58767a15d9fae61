-- The learned churn model per organization (domain/churn.rs): the fitted weights (NULL when
-- the rules stay in use) and the evaluation of the last training.
CREATE TABLE churn_models (
    organization_id TEXT PRIMARY KEY NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    model TEXT,
    evaluation TEXT NOT NULL,
    trained_at TIMESTAMP NOT NULL
);
