-- Sending and bulk sends get rights of their own: message:send (writing to clients)
-- follows message:write, send:read follows message:read, and send:create (bulk sends)
-- goes to the roles that run campaigns (admins, managers, marketers) and to any role
-- that could already create them and was changed by its organization's admin.
INSERT INTO casbin_rules (id, ptype, v0, v1, v2, v3, v4, v5)
SELECT lower(hex(randomblob(16))), 'p', s.v0, s.v1, t.res, t.action, '', ''
FROM casbin_rules s
JOIN (SELECT 'write' AS act, 'message' AS res, 'send' AS action
      UNION ALL SELECT 'read', 'send', 'read') t
  ON s.v2 = 'message' AND s.v3 = t.act
WHERE s.ptype = 'p'
  AND NOT EXISTS (
    SELECT 1 FROM casbin_rules d
    WHERE d.ptype = 'p' AND d.v0 = s.v0 AND d.v1 = s.v1 AND d.v2 = t.res AND d.v3 = t.action
  );
INSERT INTO casbin_rules (id, ptype, v0, v1, v2, v3, v4, v5)
SELECT lower(hex(randomblob(16))), 'p', s.v0, s.v1, 'send', 'create', '', ''
FROM casbin_rules s
WHERE s.ptype = 'p' AND s.v2 = 'message' AND s.v3 = 'write'
  AND s.v0 IN ('admin', 'manager', 'marketer')
  AND NOT EXISTS (
    SELECT 1 FROM casbin_rules d
    WHERE d.ptype = 'p' AND d.v0 = s.v0 AND d.v1 = s.v1 AND d.v2 = 'send' AND d.v3 = 'create'
  );
UPDATE policy_revision SET revision = revision + 1;

-- Open and click tracking can be switched off for the whole organization.
ALTER TABLE organizations ADD COLUMN mail_tracking BOOLEAN NOT NULL DEFAULT TRUE;

-- A bounce (a delivery status notification in a synced mailbox) marks the recipient and
-- flags the address: nothing is sent to it again until someone fixes or clears it.
ALTER TABLE send_recipients ADD COLUMN bounced_at TIMESTAMP;
CREATE TABLE mail_bounces (
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    address TEXT NOT NULL,
    reason TEXT NOT NULL,
    bounced_at TIMESTAMP NOT NULL,
    PRIMARY KEY (organization_id, address)
);

-- Short-message templates beside e-mail ones (no subject, no HTML).
ALTER TABLE message_templates ADD COLUMN kind TEXT NOT NULL DEFAULT 'email';

-- A message written from a deal stays with the deal (its timeline entry carries it).
ALTER TABLE mail_messages ADD COLUMN opportunity_id TEXT REFERENCES opportunities(id) ON DELETE SET NULL;

-- The conversation list shows each thread once, by its latest message: `latest` marks it,
-- kept as messages join a thread, so the list is an index range however much mail there is.
ALTER TABLE mail_messages ADD COLUMN latest BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE mail_messages SET latest = TRUE
WHERE NOT EXISTS (
    SELECT 1 FROM mail_messages n
    WHERE n.organization_id = mail_messages.organization_id
      AND n.thread_id = mail_messages.thread_id
      AND (n.occurred_at > mail_messages.occurred_at
           OR (n.occurred_at = mail_messages.occurred_at AND n.id > mail_messages.id))
);
CREATE INDEX mail_messages_conversations ON mail_messages (organization_id, latest, occurred_at, id);

-- Files a message carries: received ones as they came, sent ones copied from the client's
-- files when the message was written (so trashing the original does not change what left).
CREATE TABLE mail_attachments (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    mail_message_id TEXT NOT NULL REFERENCES mail_messages(id) ON DELETE CASCADE,
    file_name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    storage_key TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX mail_attachments_by_message ON mail_attachments (mail_message_id);
