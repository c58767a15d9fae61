-- Each client's last contact (the newest completed interaction that is not a task or a
-- system event), kept by triggers on every insert, change and delete of an interaction.
-- A segment's "no contact for 180 days" reads this column instead of probing a client's
-- interactions once per candidate (1.5–2.6 s for an OR group over a million clients).
ALTER TABLE clients ADD COLUMN last_contact_at TIMESTAMP;

UPDATE clients SET last_contact_at = (
    SELECT MAX(i.occurred_at) FROM interactions i
    WHERE i.client_id = clients.id AND i.deleted_at IS NULL AND i.status = 'completed'
      AND i.kind NOT IN ('task', 'event'));

CREATE INDEX clients_last_contact_idx ON clients (organization_id, last_contact_at);

CREATE TRIGGER clients_last_contact_insert AFTER INSERT ON interactions
WHEN NEW.deleted_at IS NULL AND NEW.status = 'completed' AND NEW.kind NOT IN ('task', 'event')
BEGIN
    UPDATE clients SET last_contact_at = NEW.occurred_at
    WHERE id = NEW.client_id AND (last_contact_at IS NULL OR last_contact_at < NEW.occurred_at);
END;

CREATE TRIGGER clients_last_contact_delete AFTER DELETE ON interactions
WHEN OLD.deleted_at IS NULL AND OLD.status = 'completed' AND OLD.kind NOT IN ('task', 'event')
BEGIN
    UPDATE clients SET last_contact_at = (
        SELECT MAX(i.occurred_at) FROM interactions i
        WHERE i.client_id = clients.id AND i.deleted_at IS NULL AND i.status = 'completed'
          AND i.kind NOT IN ('task', 'event'))
    WHERE id = OLD.client_id;
END;

CREATE TRIGGER clients_last_contact_update
AFTER UPDATE OF client_id, kind, status, occurred_at, deleted_at ON interactions
WHEN OLD.client_id IS NOT NEW.client_id OR OLD.kind IS NOT NEW.kind
  OR OLD.status IS NOT NEW.status OR OLD.occurred_at IS NOT NEW.occurred_at
  OR OLD.deleted_at IS NOT NEW.deleted_at
BEGIN
    UPDATE clients SET last_contact_at = (
        SELECT MAX(i.occurred_at) FROM interactions i
        WHERE i.client_id = clients.id AND i.deleted_at IS NULL AND i.status = 'completed'
          AND i.kind NOT IN ('task', 'event'))
    WHERE id IN (OLD.client_id, NEW.client_id);
END;
