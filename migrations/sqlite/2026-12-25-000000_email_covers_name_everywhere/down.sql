-- PostgreSQL only: SQLite's e-mail index carries the name and the id already
-- (`email_covers_name`).
SELECT 1;
