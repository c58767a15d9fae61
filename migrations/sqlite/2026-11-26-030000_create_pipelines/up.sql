-- Sales pipelines: pipelines and stages, opportunities with stage history and contacts,
-- loss reasons, quotes with lines, contracts. Money is integer cents beside an ISO currency.
CREATE TABLE pipelines (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    position INTEGER NOT NULL DEFAULT 0,
    rotting_days INTEGER,
    archived_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX pipelines_org_idx ON pipelines (organization_id, position);

CREATE TABLE pipeline_stages (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    pipeline_id TEXT NOT NULL REFERENCES pipelines(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    position INTEGER NOT NULL,
    probability INTEGER NOT NULL,
    kind TEXT NOT NULL,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    color TEXT NOT NULL DEFAULT 'blue',
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX pipeline_stages_pipeline_idx ON pipeline_stages (pipeline_id, position);

CREATE TABLE loss_reasons (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (organization_id, name)
);

CREATE TABLE opportunities (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    pipeline_id TEXT NOT NULL REFERENCES pipelines(id),
    stage_id TEXT NOT NULL REFERENCES pipeline_stages(id),
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    value_cents BIGINT NOT NULL,
    currency TEXT NOT NULL,
    probability INTEGER NOT NULL,
    probability_set BOOLEAN NOT NULL DEFAULT FALSE,
    expected_close DATE,
    actual_close DATE,
    status TEXT NOT NULL,
    assigned_to TEXT REFERENCES users(id) ON DELETE SET NULL,
    source TEXT,
    competitors TEXT NOT NULL DEFAULT '[]',
    loss_reason TEXT,
    custom_fields TEXT NOT NULL DEFAULT '{}',
    version BIGINT NOT NULL DEFAULT 1,
    stage_entered_at TIMESTAMP NOT NULL,
    created_by TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    deleted_at TIMESTAMP
);
CREATE INDEX opportunities_board_idx ON opportunities (organization_id, pipeline_id, stage_id, id) WHERE deleted_at IS NULL;
-- Covers the board's per-stage totals so they are read from the index alone.
CREATE INDEX opportunities_totals_idx ON opportunities (organization_id, pipeline_id, stage_id, currency, value_cents) WHERE deleted_at IS NULL;
CREATE INDEX opportunities_org_live_idx ON opportunities (organization_id, id) WHERE deleted_at IS NULL;
-- Cover the forecast's sums (open deals by expected close, won deals by actual close).
CREATE INDEX opportunities_close_idx ON opportunities (organization_id, status, expected_close, currency, value_cents, probability, pipeline_id, assigned_to) WHERE deleted_at IS NULL;
CREATE INDEX opportunities_won_idx ON opportunities (organization_id, status, actual_close, currency, value_cents, pipeline_id, assigned_to) WHERE deleted_at IS NULL;
CREATE INDEX opportunities_owner_idx ON opportunities (organization_id, assigned_to, id) WHERE deleted_at IS NULL;
CREATE INDEX opportunities_client_idx ON opportunities (client_id);

-- Running totals of deals per (pipeline, stage, owner, currency, status, close day), kept in
-- step with every deal write, so the board's column totals and the forecast read a few
-- thousand rows instead of every deal. '' stands for "no owner" and "no date".
CREATE TABLE opportunity_rollup (
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    pipeline_id TEXT NOT NULL,
    stage_id TEXT NOT NULL,
    assigned_to TEXT NOT NULL,
    currency TEXT NOT NULL,
    status TEXT NOT NULL,
    close_day TEXT NOT NULL,
    deals BIGINT NOT NULL,
    value_cents BIGINT NOT NULL,
    weighted_x100 BIGINT NOT NULL,
    commit_cents BIGINT NOT NULL,
    PRIMARY KEY (organization_id, pipeline_id, stage_id, assigned_to, currency, status, close_day)
);

CREATE TABLE opportunity_stage_history (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    opportunity_id TEXT NOT NULL REFERENCES opportunities(id) ON DELETE CASCADE,
    from_stage_id TEXT,
    to_stage_id TEXT NOT NULL,
    from_probability INTEGER,
    to_probability INTEGER NOT NULL,
    moved_by TEXT,
    moved_at TIMESTAMP NOT NULL
);
CREATE INDEX opportunity_stage_history_opp_idx ON opportunity_stage_history (opportunity_id, moved_at);
CREATE INDEX opportunity_stage_history_org_idx ON opportunity_stage_history (organization_id, to_stage_id);

CREATE TABLE opportunity_contacts (
    opportunity_id TEXT NOT NULL REFERENCES opportunities(id) ON DELETE CASCADE,
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    PRIMARY KEY (opportunity_id, client_id)
);

CREATE TABLE quotes (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    opportunity_id TEXT NOT NULL REFERENCES opportunities(id) ON DELETE CASCADE,
    number INTEGER NOT NULL,
    status TEXT NOT NULL,
    currency TEXT NOT NULL,
    valid_until DATE,
    terms TEXT NOT NULL DEFAULT '',
    subtotal_cents BIGINT NOT NULL,
    discount_cents BIGINT NOT NULL,
    tax_cents BIGINT NOT NULL,
    total_cents BIGINT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (organization_id, number)
);
CREATE INDEX quotes_opportunity_idx ON quotes (opportunity_id);

CREATE TABLE quote_lines (
    id TEXT PRIMARY KEY NOT NULL,
    quote_id TEXT NOT NULL REFERENCES quotes(id) ON DELETE CASCADE,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    name TEXT NOT NULL,
    quantity TEXT NOT NULL,
    unit_price_cents BIGINT NOT NULL,
    discount_percent TEXT NOT NULL,
    tax_rate TEXT NOT NULL,
    total_cents BIGINT NOT NULL
);
CREATE INDEX quote_lines_quote_idx ON quote_lines (quote_id, position);

CREATE TABLE contracts (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    opportunity_id TEXT REFERENCES opportunities(id) ON DELETE SET NULL,
    name TEXT NOT NULL,
    start_date DATE NOT NULL,
    end_date DATE NOT NULL,
    value_cents BIGINT NOT NULL,
    currency TEXT NOT NULL,
    renewal_terms TEXT NOT NULL DEFAULT '',
    notice_days INTEGER NOT NULL DEFAULT 30,
    status TEXT NOT NULL,
    document_name TEXT,
    document_type TEXT,
    document BLOB,
    renewal_opportunity_id TEXT,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX contracts_org_end_idx ON contracts (organization_id, status, end_date);
CREATE INDEX contracts_client_idx ON contracts (client_id);
