-- MCP servers. Env values and header values are sealed; only their names are readable.
-- A stdio server runs only while `approved_line` equals its current command line.
-- `tools` is the pinned (approved) tool list; `discovered` holds a differing list seen at
-- the last connect, until the owner approves it.
CREATE TABLE mcp_servers (
    id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    transport TEXT NOT NULL,
    command TEXT NOT NULL DEFAULT '',
    args TEXT NOT NULL DEFAULT '[]',
    env_sealed TEXT,
    env_names TEXT NOT NULL DEFAULT '[]',
    url TEXT NOT NULL DEFAULT '',
    headers_sealed TEXT,
    header_names TEXT NOT NULL DEFAULT '[]',
    approved_line TEXT,
    status TEXT NOT NULL DEFAULT 'never',
    last_error TEXT NOT NULL DEFAULT '',
    stderr_tail TEXT NOT NULL DEFAULT '',
    tools TEXT NOT NULL DEFAULT '[]',
    discovered TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX mcp_servers_owner_name_key ON mcp_servers (owner_id, name);
