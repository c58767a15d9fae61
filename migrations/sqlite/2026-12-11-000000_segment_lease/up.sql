-- A full evaluation holds its segment until this time (renewed page by page), so two
-- instances never evaluate the same segment at once and record its entries twice.
ALTER TABLE segments ADD COLUMN lease_until TIMESTAMP;
