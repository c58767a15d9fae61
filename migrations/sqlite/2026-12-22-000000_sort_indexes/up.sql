-- A list sorted by one of these columns reads the clients that have a value in index
-- order, then the rest by id (query::values_then_missing); without an index it read and
-- sorted every client (sort=city: a second of CPU at a million clients). Each index
-- holds only the clients with a value, so a column most clients leave empty costs their
-- creates nothing; the expressions are the sort's own (`Column::sql`). Status and type
-- had indexes that start with them, but carry the creation time before the id, so a page
-- sorted by status read and sorted the whole first status.
CREATE INDEX clients_org_status_sort_idx ON clients (organization_id, status, id)
    WHERE deleted_at IS NULL;
CREATE INDEX clients_org_kind_sort_idx ON clients (organization_id, kind, id)
    WHERE deleted_at IS NULL;
CREATE INDEX clients_org_phone_sort_idx ON clients (organization_id, phone, id)
    WHERE deleted_at IS NULL AND phone IS NOT NULL;
CREATE INDEX clients_org_company_sort_idx ON clients (organization_id, lower(company_name), id)
    WHERE deleted_at IS NULL AND lower(company_name) IS NOT NULL;
CREATE INDEX clients_org_industry_sort_idx ON clients (organization_id, lower(industry), id)
    WHERE deleted_at IS NULL AND lower(industry) IS NOT NULL;
CREATE INDEX clients_org_source_sort_idx ON clients (organization_id, lower(source), id)
    WHERE deleted_at IS NULL AND lower(source) IS NOT NULL;
CREATE INDEX clients_org_city_sort_idx ON clients (organization_id, lower(city), id)
    WHERE deleted_at IS NULL AND lower(city) IS NOT NULL;
CREATE INDEX clients_org_country_sort_idx ON clients (organization_id, country, id)
    WHERE deleted_at IS NULL AND country IS NOT NULL;
ANALYZE clients_org_status_sort_idx;
ANALYZE clients_org_kind_sort_idx;
ANALYZE clients_org_phone_sort_idx;
ANALYZE clients_org_company_sort_idx;
ANALYZE clients_org_industry_sort_idx;
ANALYZE clients_org_source_sort_idx;
ANALYZE clients_org_city_sort_idx;
ANALYZE clients_org_country_sort_idx;
