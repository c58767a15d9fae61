-- Message templates (each edit a new version; a send keeps the version it started with),
-- bulk sends and their recipients, and what a bulk message carries beyond a plain one.
CREATE TABLE message_templates (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_by TEXT REFERENCES users(id) ON DELETE SET NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX message_templates_name ON message_templates (organization_id, name);

CREATE TABLE message_template_versions (
    template_id TEXT NOT NULL REFERENCES message_templates(id) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    created_by TEXT REFERENCES users(id) ON DELETE SET NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (template_id, version)
);

CREATE TABLE sends (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    template_id TEXT REFERENCES message_templates(id) ON DELETE SET NULL,
    template_version INTEGER NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    mailbox_id TEXT REFERENCES mailboxes(id) ON DELETE SET NULL,
    created_by TEXT REFERENCES users(id) ON DELETE SET NULL,
    audience TEXT NOT NULL,
    -- scheduled, running, paused, cancelled, done
    status TEXT NOT NULL,
    per_minute INTEGER NOT NULL,
    scheduled_at TIMESTAMP NOT NULL,
    total INTEGER NOT NULL,
    excluded INTEGER NOT NULL,
    -- The throttle: messages handed out since the current minute began.
    window_started_at TIMESTAMP NOT NULL,
    window_count INTEGER NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX sends_by_org ON sends (organization_id, created_at);
CREATE INDEX sends_due ON sends (status, scheduled_at);

CREATE TABLE send_recipients (
    id TEXT PRIMARY KEY NOT NULL,
    send_id TEXT NOT NULL REFERENCES sends(id) ON DELETE CASCADE,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    address TEXT NOT NULL,
    -- waiting, handed (its message is queued), excluded, cancelled
    status TEXT NOT NULL,
    reason TEXT,
    mail_message_id TEXT REFERENCES mail_messages(id) ON DELETE SET NULL,
    opened_at TIMESTAMP,
    clicked_at TIMESTAMP,
    unsubscribed_at TIMESTAMP
);
CREATE UNIQUE INDEX send_recipients_once ON send_recipients (send_id, client_id);
CREATE INDEX send_recipients_waiting ON send_recipients (send_id, status, id);
CREATE INDEX send_recipients_message ON send_recipients (mail_message_id);

ALTER TABLE mail_messages ADD COLUMN body_html TEXT;
ALTER TABLE mail_messages ADD COLUMN list_unsubscribe TEXT;
