-- Service tokens: only the SHA-256 of the secret is stored.
CREATE TABLE tokens (
    id          TEXT PRIMARY KEY NOT NULL,
    identity    TEXT NOT NULL,
    groups_json TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);

-- One row per client connection.
CREATE TABLE sessions (
    id                TEXT PRIMARY KEY NOT NULL,
    identity          TEXT NOT NULL,
    groups_json       TEXT NOT NULL,
    source_json       TEXT NOT NULL,
    connection        TEXT NOT NULL,
    protocol          TEXT NOT NULL,
    client_addr       TEXT NOT NULL,
    client_user       TEXT NOT NULL,
    application_name  TEXT,
    started_at        INTEGER NOT NULL,
    ended_at          INTEGER,
    bytes_from_client INTEGER,
    bytes_to_client   INTEGER,
    end_reason        TEXT,
    end_detail        TEXT
);
CREATE INDEX sessions_started ON sessions (started_at);
CREATE INDEX sessions_identity ON sessions (identity, started_at);
CREATE INDEX sessions_connection ON sessions (connection, started_at);

-- One row per statement, in session order.
CREATE TABLE statements (
    session_id    TEXT NOT NULL REFERENCES sessions (id),
    seq           INTEGER NOT NULL,
    protocol      TEXT NOT NULL,
    text          TEXT NOT NULL,
    params_json   TEXT NOT NULL,
    started_at    INTEGER NOT NULL,
    duration_us   INTEGER NOT NULL,
    status        TEXT NOT NULL,
    command_tag   TEXT,
    rows_affected INTEGER,
    sqlstate      TEXT,
    error_message TEXT,
    PRIMARY KEY (session_id, seq)
);
