-- Conversations with an agent. Messages form a tree (`parent_id`): regenerating or editing
-- makes a sibling, and `leaf_id` is the branch shown. An assistant message is one run of
-- the agent; `content` is its transcript (text, tool calls and their results), kept up to
-- date while it runs, and `run_events` holds every event of the run by sequence number.
CREATE TABLE conversations (
    id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    agent_id TEXT NOT NULL,
    title TEXT NOT NULL,
    leaf_id TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX conversations_owner_updated ON conversations (owner_id, updated_at);

CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    parent_id TEXT,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT NOT NULL DEFAULT '',
    model TEXT NOT NULL DEFAULT '',
    input_tokens BIGINT,
    output_tokens BIGINT,
    cost_micros BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX messages_conversation_created ON messages (conversation_id, created_at);
CREATE INDEX messages_status ON messages (status);

CREATE TABLE run_events (
    message_id TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    event TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (message_id, seq)
);
