-- Installed plugins, per organization: the bundle (manifest + wasm) lives in the database so
-- every instance runs the same code; grants, settings, health and the enabled switch beside it.
CREATE TABLE plugin_installs (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    plugin_id TEXT NOT NULL,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    vendor TEXT NOT NULL,
    manifest TEXT NOT NULL,
    wasm BYTEA NOT NULL,
    wasm_sha256 TEXT NOT NULL,
    granted TEXT NOT NULL DEFAULT '[]',
    settings TEXT NOT NULL DEFAULT '{}',
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    calls BIGINT NOT NULL DEFAULT 0,
    failures BIGINT NOT NULL DEFAULT 0,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    disabled_reason TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (organization_id, plugin_id)
);
