-- External ids are unique per source system *and* kind of record: old systems number
-- companies and contacts from the same range. Refs recorded as "client" take the kind of
-- the record they point at.
UPDATE external_refs
SET entity = CASE
    WHEN (SELECT kind FROM clients WHERE clients.id = external_refs.record_id) = 'company' THEN 'company'
    ELSE 'contact'
END
WHERE entity = 'client';
