-- "Forgot password": one row per request, whether or not the address has an account, so
-- the throttle counts every request alike. Only the SHA-256 of a link's token is kept.
CREATE TABLE password_resets (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT REFERENCES users(id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    ip TEXT NOT NULL,
    token_hash TEXT UNIQUE,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX password_resets_email_idx ON password_resets (email, created_at);
CREATE INDEX password_resets_ip_idx ON password_resets (ip, created_at);
CREATE INDEX password_resets_user_idx ON password_resets (user_id);
