-- Personal API keys for the OpenAI-compatible API. Only a SHA-256 of the key is stored
-- (a key is 32 random bytes, so a fast hash is enough); `prefix` is what people see.
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX api_keys_owner ON api_keys (owner_id);
