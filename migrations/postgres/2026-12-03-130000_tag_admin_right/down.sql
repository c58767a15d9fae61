-- The grants stay: removing them could take a right an admin gave on purpose.
SELECT 1;
