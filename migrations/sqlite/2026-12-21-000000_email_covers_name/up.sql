-- The e-mail index carries the id and the name. A list sorted by e-mail reads its clients
-- with an address in `(email, id)` order from it, and the list's text filter sorted by name
-- reads its e-mail part (every client whose address starts with the text) from this index
-- alone and sorts it, instead of reading each client's row (`marg` at a million clients:
-- 45,400 rows, ~100 ms → ~10 ms for the statement).
DROP INDEX clients_org_email_idx;
CREATE INDEX clients_org_email_idx ON clients (organization_id, email, id, sort_name)
  WHERE deleted_at IS NULL;
ANALYZE clients_org_email_idx;
