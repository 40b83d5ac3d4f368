-- An MCP server's read-only hints (`readOnlyHint`) are the server's own claim: by default
-- they allow nothing, and every unlisted tool asks before it runs. An administrator may
-- trust one of their servers' hints; its tools marked read-only then default to allow.
-- A flag, BIGINT 0/1 like the others (sqlx's Any driver cannot decode BOOLEAN).
ALTER TABLE mcp_servers ADD COLUMN trust_read_only BIGINT NOT NULL DEFAULT 0;
