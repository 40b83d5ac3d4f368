-- Read-only links to a conversation, as its branch was when shared (`leaf_id`). The link's
-- token is derived from the row's id under the server's key and only its SHA-256 is
-- stored; revoking sets `revoked_at` and the link stops working at once.
CREATE TABLE conversation_shares (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    owner_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    leaf_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX conversation_shares_conversation ON conversation_shares (conversation_id);
