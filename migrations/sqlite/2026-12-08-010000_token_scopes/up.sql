-- API tokens get scopes (what of the user's rights the token carries; never more), an
-- optional expiry, and a rate limit in requests per minute.
ALTER TABLE api_tokens ADD COLUMN scopes TEXT NOT NULL DEFAULT '["*"]';
ALTER TABLE api_tokens ADD COLUMN expires_at TIMESTAMP;
ALTER TABLE api_tokens ADD COLUMN rate_limit INTEGER NOT NULL DEFAULT 600;
