-- Clients (people and companies), tags, relations, custom fields and saved views.
CREATE TABLE clients (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    first_name TEXT,
    last_name TEXT,
    company_name TEXT,
    display_name TEXT NOT NULL,
    sort_name TEXT NOT NULL,
    email TEXT,
    phone TEXT,
    street TEXT,
    city TEXT,
    region TEXT,
    postal_code TEXT,
    country TEXT,
    website TEXT,
    industry TEXT,
    source TEXT,
    status TEXT NOT NULL,
    assigned_to TEXT REFERENCES users(id) ON DELETE SET NULL,
    employer_id TEXT REFERENCES clients(id) ON DELETE SET NULL,
    custom_fields TEXT NOT NULL DEFAULT '{}',
    version BIGINT NOT NULL DEFAULT 1,
    created_by TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    deleted_at TIMESTAMP
);
-- Live clients in id order (the default list order), and the common filters and sorts.
CREATE INDEX clients_org_live_idx ON clients (organization_id, id) WHERE deleted_at IS NULL;
CREATE INDEX clients_org_trash_idx ON clients (organization_id, deleted_at) WHERE deleted_at IS NOT NULL;
CREATE INDEX clients_org_status_idx ON clients (organization_id, status, id) WHERE deleted_at IS NULL;
CREATE INDEX clients_org_owner_idx ON clients (organization_id, assigned_to, id) WHERE deleted_at IS NULL;
CREATE INDEX clients_org_name_idx ON clients (organization_id, sort_name, id) WHERE deleted_at IS NULL;
CREATE INDEX clients_org_created_idx ON clients (organization_id, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX clients_org_updated_idx ON clients (organization_id, updated_at, id) WHERE deleted_at IS NULL;
CREATE INDEX clients_employer_idx ON clients (employer_id);

CREATE TABLE tags (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    color TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (organization_id, name)
);

CREATE TABLE client_tags (
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    tag_id TEXT NOT NULL REFERENCES tags(id) ON DELETE CASCADE,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    PRIMARY KEY (client_id, tag_id)
);
CREATE INDEX client_tags_tag_idx ON client_tags (tag_id, client_id);

CREATE TABLE client_relations (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    from_client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    to_client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    label TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (from_client_id, to_client_id, label)
);
CREATE INDEX client_relations_to_idx ON client_relations (to_client_id);

CREATE TABLE custom_fields (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    entity TEXT NOT NULL,
    field_key TEXT NOT NULL,
    label TEXT NOT NULL,
    field_type TEXT NOT NULL,
    required BOOLEAN NOT NULL DEFAULT FALSE,
    options TEXT NOT NULL DEFAULT '[]',
    default_value TEXT,
    help_text TEXT NOT NULL DEFAULT '',
    display_group TEXT NOT NULL DEFAULT '',
    position INTEGER NOT NULL DEFAULT 0,
    sensitive BOOLEAN NOT NULL DEFAULT FALSE,
    currency TEXT,
    archived_at TIMESTAMP,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (organization_id, entity, field_key)
);

-- The index side of custom values: one row per value (several for multi select),
-- typed so filters and sorts use an index. The record's JSON copy is what is shown.
CREATE TABLE custom_field_values (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    field_id TEXT NOT NULL REFERENCES custom_fields(id) ON DELETE CASCADE,
    record_id TEXT NOT NULL,
    text_value TEXT,
    num_value BIGINT
);
CREATE INDEX custom_field_values_text_idx ON custom_field_values (field_id, text_value, record_id);
CREATE INDEX custom_field_values_num_idx ON custom_field_values (field_id, num_value, record_id);
CREATE INDEX custom_field_values_record_idx ON custom_field_values (record_id, field_id);

CREATE TABLE saved_views (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    entity TEXT NOT NULL,
    name TEXT NOT NULL,
    query TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (organization_id, user_id, entity, name)
);
