-- PostgreSQL only: SQLite has kept the tag set with row triggers since client_tag_set.
SELECT 1;
