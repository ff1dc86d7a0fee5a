-- API tokens of the HTTP server (eventkeep serve): one row per token, the secret kept only as
-- its SHA-256 digest. scopes and prefixes are JSON arrays; revoked_at is set once and kept.
CREATE TABLE IF NOT EXISTS api_tokens (
    token_id    text             NOT NULL PRIMARY KEY,
    name        text             NOT NULL,
    digest      text             NOT NULL,
    scopes      text             NOT NULL,
    prefixes    text             NOT NULL,
    rate_limit  double precision,
    created_at  bigint           NOT NULL,
    revoked_at  bigint
);
