-- Several gateway nodes may share a store (PostgreSQL; SQLite keeps the
-- same schema for one node).
--
-- An approval's votes are counted beside its body, so a vote is written
-- only over the state it was cast on (`vote_count` and `state` unchanged):
-- two approvers voting at once on two nodes cannot overwrite each other.
-- `changed_at` (the store's clock, unix milliseconds) is when it was last
-- written: nodes poll for the approvals changed since they last looked.
-- Rows from before have no change time (0); their votes are counted here.
ALTER TABLE approvals ADD COLUMN vote_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE approvals ADD COLUMN changed_at INTEGER NOT NULL DEFAULT 0;
UPDATE approvals SET vote_count = COALESCE(json_array_length(body_json, '$.votes'), 0);
CREATE INDEX approvals_changed ON approvals (changed_at, id);

-- The gateway nodes using the store: each heartbeats; one that falls
-- silent is marked lost by another (`lost_at`, `lost_by`), which ends its
-- open sessions.
CREATE TABLE nodes (
    id           TEXT PRIMARY KEY NOT NULL,
    api_address  TEXT NOT NULL,
    version      TEXT NOT NULL,
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL,
    stopped_at   INTEGER,
    lost_at      INTEGER,
    lost_by      TEXT
);

-- The node that served each session (NULL for sessions from before).
ALTER TABLE sessions ADD COLUMN node_id TEXT;
CREATE INDEX sessions_open_by_node ON sessions (node_id) WHERE ended_at IS NULL;
