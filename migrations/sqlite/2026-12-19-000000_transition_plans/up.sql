-- PostgreSQL only: SQLite keeps these counts with row triggers, planned per statement.
SELECT 1;
