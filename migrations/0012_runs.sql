-- Every piece of agent work is a run: a chat answer, an API answer, and later a build, a
-- team member's sub-run, an evaluation case or a triggered run. A run belongs to its
-- owner (not to a conversation), names what it works for (`subject_id`: the answer's
-- message for chat and the API) and what that belongs to (`scope_id`: the conversation;
-- later a build's project), may have a parent run, is driven by one instance, and
-- keeps its status, limits and totals. `transcript` is its events folded (what chat shows
-- as the answer). Its events are stored in batches (`run_events`, one row per flush).
--
-- Existing answers become runs of kind `chat` with their message's id as the run's id,
-- so their events and controls keep their keys; the message keeps its place in the
-- conversation and points at its run. The agent version they ran is not known (0).
CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    owner_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    agent_id TEXT NOT NULL,
    agent_version BIGINT NOT NULL DEFAULT 0,
    subject_id TEXT NOT NULL DEFAULT '',
    scope_id TEXT NOT NULL DEFAULT '',
    parent_id TEXT,
    instance_id TEXT,
    status TEXT NOT NULL,
    limits TEXT NOT NULL DEFAULT '{}',
    transcript TEXT NOT NULL,
    model TEXT NOT NULL DEFAULT '',
    input_tokens BIGINT NOT NULL DEFAULT 0,
    output_tokens BIGINT NOT NULL DEFAULT 0,
    cost_micros BIGINT NOT NULL DEFAULT 0,
    error TEXT NOT NULL DEFAULT '',
    started_at BIGINT NOT NULL,
    ended_at BIGINT,
    updated_at BIGINT NOT NULL
);
CREATE INDEX runs_owner_started ON runs (owner_id, started_at);
CREATE INDEX runs_status ON runs (status);
CREATE INDEX runs_parent ON runs (parent_id);
CREATE INDEX runs_scope ON runs (scope_id);

INSERT INTO runs (id, kind, owner_id, agent_id, agent_version, subject_id, scope_id, parent_id, instance_id, status,
                  limits, transcript, model, input_tokens, output_tokens, cost_micros, error, started_at, ended_at,
                  updated_at)
    SELECT m.id, 'chat', c.owner_id, c.agent_id, 0, m.id, m.conversation_id, NULL, m.run_instance, m.status, '{}',
           m.content, m.model, COALESCE(m.input_tokens, 0), COALESCE(m.output_tokens, 0), COALESCE(m.cost_micros, 0),
           m.error, m.created_at,
           CASE WHEN m.status IN ('running', 'waiting') THEN NULL ELSE m.updated_at END, m.updated_at
    FROM messages m JOIN conversations c ON c.id = m.conversation_id
    WHERE m.role = 'assistant';

ALTER TABLE messages ADD COLUMN run_id TEXT;
UPDATE messages SET run_id = id, content = '' WHERE role = 'assistant';
CREATE INDEX messages_run ON messages (run_id);
DROP INDEX messages_status;
ALTER TABLE messages DROP COLUMN status;
ALTER TABLE messages DROP COLUMN error;
ALTER TABLE messages DROP COLUMN model;
ALTER TABLE messages DROP COLUMN input_tokens;
ALTER TABLE messages DROP COLUMN output_tokens;
ALTER TABLE messages DROP COLUMN cost_micros;
ALTER TABLE messages DROP COLUMN run_instance;

CREATE TABLE run_events (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    first_seq BIGINT NOT NULL,
    last_seq BIGINT NOT NULL,
    events TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (run_id, first_seq)
);
INSERT INTO run_events (run_id, first_seq, last_seq, events, created_at)
    SELECT b.message_id, b.first_seq, b.last_seq, b.events, b.created_at
    FROM run_event_batches b JOIN runs r ON r.id = b.message_id;
DROP TABLE run_event_batches;

CREATE TABLE run_controls_by_run (
    id TEXT PRIMARY KEY,
    instance_id TEXT NOT NULL,
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    call_id TEXT NOT NULL DEFAULT '',
    allow BIGINT NOT NULL DEFAULT 0,
    by_user TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL
);
INSERT INTO run_controls_by_run (id, instance_id, run_id, kind, call_id, allow, created_at)
    SELECT k.id, k.instance_id, k.message_id, k.kind, k.call_id, k.allow, k.created_at
    FROM run_controls k JOIN runs r ON r.id = k.message_id;
DROP TABLE run_controls;
ALTER TABLE run_controls_by_run RENAME TO run_controls;
CREATE INDEX run_controls_instance ON run_controls (instance_id);
