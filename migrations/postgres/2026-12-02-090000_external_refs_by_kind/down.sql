-- The old key cannot hold a company and a contact with the same id: the company keeps it.
DELETE FROM external_refs
WHERE entity = 'contact'
  AND EXISTS (
    SELECT 1 FROM external_refs e
    WHERE e.organization_id = external_refs.organization_id
      AND e.source = external_refs.source
      AND e.entity = 'company'
      AND e.external_id = external_refs.external_id
  );
UPDATE external_refs SET entity = 'client' WHERE entity IN ('company', 'contact');
