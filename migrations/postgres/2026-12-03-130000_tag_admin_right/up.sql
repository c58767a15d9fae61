-- Renaming and recolouring the organization's tags now needs tag:admin (it needed
-- tag:write, which every rep holds to tag clients). Roles that may delete tags (managers by
-- default) keep managing them: each gets tag:admin; policies reload on the new revision.
INSERT INTO casbin_rules (id, ptype, v0, v1, v2, v3, v4, v5)
SELECT gen_random_uuid()::text, 'p', d.v0, d.v1, 'tag', 'admin', '', ''
FROM casbin_rules d
WHERE d.ptype = 'p' AND d.v2 = 'tag' AND d.v3 = 'delete'
  AND NOT EXISTS (
    SELECT 1 FROM casbin_rules a
    WHERE a.ptype = 'p' AND a.v0 = d.v0 AND a.v1 = d.v1 AND a.v2 = 'tag' AND a.v3 = 'admin'
  );
UPDATE policy_revision SET revision = revision + 1;
