-- Skills: one row per skill (name unique per owner), one per uploaded version. Files live
-- in blob storage under skills/<id>/<version>/<path>; `manifest` lists them (path, size).
CREATE TABLE skills (
    id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX skills_owner_name_key ON skills (owner_id, name);

CREATE TABLE skill_versions (
    skill_id TEXT NOT NULL REFERENCES skills (id) ON DELETE CASCADE,
    version BIGINT NOT NULL,
    description TEXT NOT NULL,
    manifest TEXT NOT NULL,
    html TEXT NOT NULL,
    author_id TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (skill_id, version)
);
