-- Several Agentry processes may share one PostgreSQL. Each run belongs to the process
-- (instance) that drives it; instances beat a heartbeat, so a run whose instance stopped
-- beating is known to be dead and is marked interrupted by whichever instance notices,
-- never a run of a live one. Stopping or answering a run from another instance leaves a
-- control row that the owning instance picks up.
ALTER TABLE messages ADD COLUMN run_instance TEXT;

CREATE TABLE instances (
    id TEXT PRIMARY KEY,
    started_at BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
);

CREATE TABLE run_controls (
    id TEXT PRIMARY KEY,
    instance_id TEXT NOT NULL,
    message_id TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    call_id TEXT NOT NULL DEFAULT '',
    allow BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);
CREATE INDEX run_controls_instance ON run_controls (instance_id);
