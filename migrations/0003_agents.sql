-- Agents and their versions. `spec` is the whole agent as JSON (model::agents::AgentSpec);
-- every save appends a version and moves `version` on, so history is never rewritten.
CREATE TABLE agents (
    id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    slug TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    model TEXT NOT NULL DEFAULT '',
    spec TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX agents_owner_slug_key ON agents (owner_id, slug);
CREATE INDEX agents_owner_updated_idx ON agents (owner_id, updated_at);

CREATE TABLE agent_versions (
    agent_id TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    version BIGINT NOT NULL,
    spec TEXT NOT NULL,
    author_id TEXT REFERENCES users (id) ON DELETE SET NULL,
    restored_from BIGINT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (agent_id, version)
);
