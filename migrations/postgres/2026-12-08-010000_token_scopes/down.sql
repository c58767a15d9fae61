ALTER TABLE api_tokens DROP COLUMN rate_limit;
ALTER TABLE api_tokens DROP COLUMN expires_at;
ALTER TABLE api_tokens DROP COLUMN scopes;
