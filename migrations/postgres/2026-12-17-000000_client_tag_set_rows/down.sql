DROP TRIGGER client_tag_set_insert ON client_tags;
DROP TRIGGER client_tag_set_update ON client_tags;
DROP TRIGGER client_tag_set_delete ON client_tags;
DROP FUNCTION client_tag_set_row();

-- The set of each client in `ids` read again from its links; a set that is already right
-- (bulk inserts write it with the client) changes no client row.
CREATE FUNCTION client_tag_set_refresh(ids TEXT[]) RETURNS void LANGUAGE sql AS $$
    UPDATE clients c SET tag_set = m.tag_set
    FROM (SELECT t.cid, ',' || COALESCE((SELECT string_agg(ct.tag_id, ',' ORDER BY ct.tag_id COLLATE "C") || ','
                                          FROM client_tags ct WHERE ct.client_id = t.cid), '')
                        AS tag_set
          FROM unnest(ids) AS t(cid)) m
    WHERE c.id = m.cid AND c.tag_set IS DISTINCT FROM m.tag_set;
$$;

-- why statement-level with transition tables, as the other kept columns: a thousand links of
-- an import make one grouped update, clients taken in id order.
CREATE FUNCTION client_tag_set_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM client_tag_set_refresh(ARRAY(
            SELECT DISTINCT client_id FROM new_rows ORDER BY 1));
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM client_tag_set_refresh(ARRAY(
            SELECT DISTINCT client_id FROM old_rows ORDER BY 1));
    ELSE
        PERFORM client_tag_set_refresh(ARRAY(
            SELECT client_id FROM old_rows UNION SELECT client_id FROM new_rows ORDER BY 1));
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER client_tag_set_insert AFTER INSERT ON client_tags
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION client_tag_set_apply();
CREATE TRIGGER client_tag_set_update AFTER UPDATE ON client_tags
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION client_tag_set_apply();
CREATE TRIGGER client_tag_set_delete AFTER DELETE ON client_tags
REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION client_tag_set_apply();
