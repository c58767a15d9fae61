-- PostgreSQL only: SQLite moves a score's owner with a row trigger, as before.
SELECT 1;
