-- Idempotency keys: a request sent again with the same key (a retry, a double click) gets
-- the first one's answer. Kept 24 hours; `message_id` is empty while the first request is
-- still starting its answer.
CREATE TABLE idempotency_keys (
    owner_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    user_message_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (owner_id, scope, idem_key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
