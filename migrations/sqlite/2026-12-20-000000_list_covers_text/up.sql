-- The newest-first list's index carries the columns the text filter reads (name, e-mail,
-- phone key): a common prefix such as "marg" walks this index past thousands of clients
-- that do not match before a page is full, and SQLite now tests each entry from the index
-- instead of reading its row (7 ms → 1.1 ms at a million clients).
DROP INDEX clients_org_created_idx;
CREATE INDEX clients_org_created_idx ON clients (organization_id, created_at, id, sort_name, email, phone_key)
  WHERE deleted_at IS NULL;
-- why: without statistics for the new index the planner preferred it over the
-- updated-at one for a newest-changed list (a whole-index walk instead of a page).
ANALYZE clients_org_created_idx;
