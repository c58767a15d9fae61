-- Communication preferences per client: per channel (email, phone, sms, post) an opt-in or
-- opt-out with its source and time (JSON object), do-not-contact, preferred channel and time.
CREATE TABLE contact_preferences (
    client_id TEXT PRIMARY KEY NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    channels TEXT NOT NULL DEFAULT '{}',
    do_not_contact BOOLEAN NOT NULL DEFAULT FALSE,
    preferred_channel TEXT,
    preferred_window TEXT,
    updated_at TIMESTAMP NOT NULL
);
