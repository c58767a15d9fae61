ALTER TABLE segments DROP COLUMN lease_until;
