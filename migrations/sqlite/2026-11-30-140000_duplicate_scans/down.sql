DROP TABLE duplicate_groups;
DROP TABLE duplicate_scans;
