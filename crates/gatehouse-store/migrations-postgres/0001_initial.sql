-- The shared store's schema: the SQLite store's after all its migrations
-- (see ../migrations), in PostgreSQL's types. Times are unix milliseconds
-- (BIGINT); ids compare byte by byte (COLLATE "C"), as in SQLite, so pages
-- and orders are the same whatever the database's locale.

-- Service tokens and registered SSH keys: only the SHA-256 of the secret
-- (or key) is stored. ssh_key names a key (its SHA256 fingerprint); NULL
-- for a service token.
CREATE TABLE tokens (
    id          TEXT COLLATE "C" PRIMARY KEY,
    identity    TEXT NOT NULL,
    groups_json TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    revoked_at  BIGINT,
    ssh_key     TEXT
);

-- One row per client connection, with the node that served it.
CREATE TABLE sessions (
    id                TEXT COLLATE "C" PRIMARY KEY,
    identity          TEXT NOT NULL,
    groups_json       TEXT NOT NULL,
    source_json       TEXT NOT NULL,
    connection        TEXT NOT NULL,
    protocol          TEXT NOT NULL,
    client_addr       TEXT NOT NULL,
    client_user       TEXT NOT NULL,
    application_name  TEXT,
    started_at        BIGINT NOT NULL,
    ended_at          BIGINT,
    bytes_from_client BIGINT,
    bytes_to_client   BIGINT,
    end_reason        TEXT,
    end_detail        TEXT,
    node_id           TEXT COLLATE "C"
);
CREATE INDEX sessions_started ON sessions (started_at);
CREATE INDEX sessions_identity ON sessions (identity, started_at);
CREATE INDEX sessions_connection ON sessions (connection, started_at);
CREATE INDEX sessions_open_by_node ON sessions (node_id) WHERE ended_at IS NULL;

-- Long statement texts (1 KiB and more), stored once by content however
-- many statement records and approval requests name them.
CREATE TABLE statement_texts (
    sha256 TEXT COLLATE "C" PRIMARY KEY,
    text   TEXT NOT NULL
);

-- One row per statement, in session order, with its policy decision, what
-- masking did to its results and (HTTP) what the exchange carried.
CREATE TABLE statements (
    session_id             TEXT COLLATE "C" NOT NULL REFERENCES sessions (id),
    seq                    BIGINT NOT NULL,
    protocol               TEXT NOT NULL,
    text                   TEXT NOT NULL,
    params_json            TEXT NOT NULL,
    started_at             BIGINT NOT NULL,
    duration_us            BIGINT NOT NULL,
    status                 TEXT NOT NULL,
    command_tag            TEXT,
    rows_affected          BIGINT,
    sqlstate               TEXT,
    error_message          TEXT,
    decision               TEXT,
    decision_policies_json TEXT,
    policy_mode            TEXT,
    decision_reason        TEXT,
    masking_json           TEXT,
    exchange_json          TEXT,
    text_sha256            TEXT COLLATE "C",
    PRIMARY KEY (session_id, seq)
);

-- Approval requests. The whole request is kept as JSON; the columns beside
-- it are what lookups filter on and what conditional writes compare
-- (state, vote_count). changed_at is the store's clock at the last write.
CREATE TABLE approvals (
    id          TEXT COLLATE "C" PRIMARY KEY,
    state       TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    body_json   TEXT NOT NULL,
    text_sha256 TEXT COLLATE "C",
    vote_count  BIGINT NOT NULL DEFAULT 0,
    changed_at  BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX approvals_state ON approvals (state, created_at, id);
CREATE INDEX approvals_fingerprint ON approvals (fingerprint);
CREATE INDEX approvals_changed ON approvals (changed_at, id);

-- Sensitive columns the masking detectors found; key (connection, schema,
-- table, column) is unique among those not removed.
CREATE TABLE sensitive_columns (
    id         TEXT COLLATE "C" PRIMARY KEY,
    key        TEXT NOT NULL,
    found_at   BIGINT NOT NULL,
    removed_at BIGINT,
    body_json  TEXT NOT NULL
);
CREATE UNIQUE INDEX sensitive_columns_key ON sensitive_columns (key) WHERE removed_at IS NULL;

-- The gateway nodes sharing the store: each heartbeats; one that falls
-- silent is marked lost by another (lost_at, lost_by), which ends its open
-- sessions.
CREATE TABLE nodes (
    id           TEXT COLLATE "C" PRIMARY KEY,
    api_address  TEXT NOT NULL,
    version      TEXT NOT NULL,
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL,
    stopped_at   BIGINT,
    lost_at      BIGINT,
    lost_by      TEXT
);
