-- API tokens of the HTTP server (eventkeep serve): one row per token, the secret kept only as
-- its SHA-256 digest. scopes and prefixes are JSON arrays; revoked_at is set once and kept.
CREATE TABLE IF NOT EXISTS api_tokens (
    token_id    TEXT    NOT NULL PRIMARY KEY,
    name        TEXT    NOT NULL,
    digest      TEXT    NOT NULL,
    scopes      TEXT    NOT NULL,
    prefixes    TEXT    NOT NULL,
    rate_limit  REAL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
