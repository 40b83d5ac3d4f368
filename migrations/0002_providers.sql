-- Connections to model providers. `scope` is the owner's id for a personal connection, or
-- 'shared' for one an admin made for everyone; names are unique within a scope.
CREATE TABLE providers (
    id TEXT PRIMARY KEY,
    scope TEXT NOT NULL,
    owner_id TEXT REFERENCES users (id) ON DELETE CASCADE,
    created_by TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    base_url TEXT NOT NULL,
    -- AES-256-GCM, bound to the row and field; never returned to a browser.
    api_key_sealed TEXT,
    api_key_hint TEXT NOT NULL DEFAULT '',
    headers_sealed TEXT,
    header_names TEXT NOT NULL DEFAULT '[]',
    models TEXT NOT NULL DEFAULT '[]',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX providers_scope_name_key ON providers (scope, name);
CREATE INDEX providers_owner_idx ON providers (owner_id);
