-- Deleting a timeline entry now needs interaction:delete (it needed interaction:write).
-- Roles that could delete before keep the right: every role of every organization that
-- holds interaction:write gets interaction:delete, and policies reload on the new revision.
INSERT INTO casbin_rules (id, ptype, v0, v1, v2, v3, v4, v5)
SELECT gen_random_uuid()::text, 'p', w.v0, w.v1, 'interaction', 'delete', '', ''
FROM casbin_rules w
WHERE w.ptype = 'p' AND w.v2 = 'interaction' AND w.v3 = 'write'
  AND NOT EXISTS (
    SELECT 1 FROM casbin_rules d
    WHERE d.ptype = 'p' AND d.v0 = w.v0 AND d.v1 = w.v1 AND d.v2 = 'interaction' AND d.v3 = 'delete'
  );
UPDATE policy_revision SET revision = revision + 1;
