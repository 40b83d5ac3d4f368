-- App specs and their versions. `body` on `specs` is the newest version's text; every save
-- appends a version and moves `version` on, so history is never rewritten.
CREATE TABLE specs (
    id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    body TEXT NOT NULL,
    size BIGINT NOT NULL,
    lines BIGINT NOT NULL,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX specs_owner_updated ON specs (owner_id, updated_at);

CREATE TABLE spec_versions (
    spec_id TEXT NOT NULL REFERENCES specs (id) ON DELETE CASCADE,
    version BIGINT NOT NULL,
    name TEXT NOT NULL,
    body TEXT NOT NULL,
    size BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (spec_id, version)
);
