-- Sensitive columns the masking detectors found. The whole record is kept
-- as JSON; `key` (connection, schema, table, column) is unique among the
-- columns not removed, so a column is stored once however often it is found.
CREATE TABLE sensitive_columns (
    id          TEXT PRIMARY KEY,
    key         TEXT NOT NULL,
    found_at    INTEGER NOT NULL,
    removed_at  INTEGER,
    body_json   TEXT NOT NULL
);
CREATE UNIQUE INDEX sensitive_columns_key ON sensitive_columns (key) WHERE removed_at IS NULL;
