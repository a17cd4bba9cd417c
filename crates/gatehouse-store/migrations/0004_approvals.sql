-- Approval requests. The whole request (requester, statement, votes) is kept
-- as JSON; the columns beside it are what lookups filter on.
CREATE TABLE approvals (
    id          TEXT PRIMARY KEY,
    state       TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    body_json   TEXT NOT NULL
);
CREATE INDEX approvals_state ON approvals (state, created_at);
CREATE INDEX approvals_fingerprint ON approvals (fingerprint);
