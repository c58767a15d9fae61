-- Segments count by country far more than by any other column the client list does not
-- index ("customers in Germany …"): at a million clients, fetching every row of a status
-- to read its country took 1 s of the 1.4 s a four-condition count needed.
CREATE INDEX clients_org_country_idx ON clients (organization_id, lower(country), status)
    WHERE deleted_at IS NULL;
