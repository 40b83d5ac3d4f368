-- A run's events are stored in batches: each flush (about every 100 ms) writes one row per
-- run holding its new events `first_seq..=last_seq` as a JSON array, in order. A thousand
-- live runs cost a thousand rows a round, not one row per token. Existing events become
-- batches of one.
CREATE TABLE run_event_batches (
    message_id TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    first_seq BIGINT NOT NULL,
    last_seq BIGINT NOT NULL,
    events TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (message_id, first_seq)
);
INSERT INTO run_event_batches (message_id, first_seq, last_seq, events, created_at)
    SELECT message_id, seq, seq, '[' || event || ']', created_at FROM run_events;
DROP TABLE run_events;
