-- A person's rating of an answer: up (1) or down (-1) with an optional note, one per
-- answer, kept with the run that wrote it for evaluations.
CREATE TABLE message_ratings (
    message_id TEXT PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
    owner_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    agent_id TEXT NOT NULL,
    run_id TEXT,
    rating BIGINT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX message_ratings_owner ON message_ratings (owner_id, updated_at);
