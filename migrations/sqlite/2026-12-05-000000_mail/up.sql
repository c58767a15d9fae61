-- The communication center's e-mail: mailboxes (an organization's shared ones and each
-- user's own), what was synced from each IMAP folder, and every message sent or received.
CREATE TABLE mailboxes (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    -- NULL: the organization's shared mailbox; else the user's own.
    user_id TEXT REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    address TEXT NOT NULL,
    username TEXT NOT NULL,
    -- AES-256-GCM under the instance's key (nonce + ciphertext, base64); never returned.
    secret TEXT NOT NULL,
    imap_host TEXT NOT NULL,
    imap_port INTEGER NOT NULL,
    imap_security TEXT NOT NULL,
    smtp_host TEXT NOT NULL,
    smtp_port INTEGER NOT NULL,
    smtp_security TEXT NOT NULL,
    sent_folder TEXT NOT NULL,
    sync_enabled BOOLEAN NOT NULL,
    last_sync_at TIMESTAMP,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX mailboxes_by_org ON mailboxes (organization_id, user_id);

-- Where each folder's sync stopped: nothing at or below last_uid is fetched again while
-- the server's UIDVALIDITY stays the same.
CREATE TABLE mail_folders (
    mailbox_id TEXT NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    folder TEXT NOT NULL,
    uid_validity BIGINT NOT NULL,
    last_uid BIGINT NOT NULL,
    PRIMARY KEY (mailbox_id, folder)
);

CREATE TABLE mail_messages (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    mailbox_id TEXT REFERENCES mailboxes(id) ON DELETE SET NULL,
    user_id TEXT REFERENCES users(id) ON DELETE SET NULL,
    direction TEXT NOT NULL,
    -- outbound: queued, sending, sent, failed, uncertain, refused; inbound: received
    status TEXT NOT NULL,
    message_id TEXT NOT NULL,
    in_reply_to TEXT,
    thread_id TEXT NOT NULL,
    from_address TEXT NOT NULL,
    from_name TEXT NOT NULL,
    to_addresses TEXT NOT NULL,
    cc_addresses TEXT NOT NULL,
    bcc_addresses TEXT NOT NULL,
    subject TEXT NOT NULL,
    body_text TEXT NOT NULL,
    matched BOOLEAN NOT NULL,
    error TEXT,
    attempts INTEGER NOT NULL,
    next_attempt_at TIMESTAMP,
    occurred_at TIMESTAMP NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
-- One row per message per organization, however many of its mailboxes hold a copy.
CREATE UNIQUE INDEX mail_messages_once ON mail_messages (organization_id, message_id);
CREATE INDEX mail_messages_recent ON mail_messages (organization_id, occurred_at, id);
CREATE INDEX mail_messages_thread ON mail_messages (organization_id, thread_id, occurred_at);
CREATE INDEX mail_messages_due ON mail_messages (status, next_attempt_at);

-- Which clients a message is filed on, and the timeline entry it made there.
CREATE TABLE mail_message_clients (
    mail_message_id TEXT NOT NULL REFERENCES mail_messages(id) ON DELETE CASCADE,
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    interaction_id TEXT REFERENCES interactions(id) ON DELETE SET NULL,
    PRIMARY KEY (mail_message_id, client_id)
);
CREATE INDEX mail_message_clients_by_client ON mail_message_clients (client_id);

-- Rights: reading the communication center follows interaction:read, writing e-mail
-- (message:write) follows interaction:write, and connecting the organization's shared
-- mailboxes (message:admin) follows user:admin. Policies reload on the new revision.
INSERT INTO casbin_rules (id, ptype, v0, v1, v2, v3, v4, v5)
SELECT lower(hex(randomblob(16))), 'p', s.v0, s.v1, 'message', t.action, '', ''
FROM casbin_rules s
JOIN (SELECT 'interaction' AS res, 'read' AS act, 'read' AS action
      UNION ALL SELECT 'interaction', 'write', 'write'
      UNION ALL SELECT 'user', 'admin', 'admin') t
  ON s.v2 = t.res AND s.v3 = t.act
WHERE s.ptype = 'p'
  AND NOT EXISTS (
    SELECT 1 FROM casbin_rules d
    WHERE d.ptype = 'p' AND d.v0 = s.v0 AND d.v1 = s.v1 AND d.v2 = 'message' AND d.v3 = t.action
  );
UPDATE policy_revision SET revision = revision + 1;
