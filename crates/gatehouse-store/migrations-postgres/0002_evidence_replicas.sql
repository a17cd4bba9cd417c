-- A replica of every node's evidence log, and the nodes' witness
-- cosignatures of each other's checkpoints. Each node keeps its own log
-- locally (SQLite) and copies it here in the background; each checks the
-- others' checkpoints against these copies and cosigns them, so one
-- verification from any node covers the whole fleet. Rows are only ever
-- inserted: a copy retried after a lost commit changes nothing.

-- Each node's entries, by sequence number, as its log stored them.
CREATE TABLE evidence_entries (
    node_id TEXT COLLATE "C" NOT NULL,
    seq     BIGINT NOT NULL,
    bytes   BYTEA NOT NULL,
    PRIMARY KEY (node_id, seq)
);

-- Each node's signed checkpoints (notes), by tree size. published_at is
-- the store's clock.
CREATE TABLE evidence_checkpoints (
    node_id      TEXT COLLATE "C" NOT NULL,
    size         BIGINT NOT NULL,
    note         TEXT NOT NULL,
    published_at BIGINT NOT NULL,
    PRIMARY KEY (node_id, size)
);

-- A witness's cosignature (note) of node_id's checkpoint at size, with the
-- witness's state after checking it (opaque to the store: what its next
-- check resumes from).
CREATE TABLE evidence_cosignatures (
    node_id   TEXT COLLATE "C" NOT NULL,
    size      BIGINT NOT NULL,
    cosigner  TEXT COLLATE "C" NOT NULL,
    note      TEXT NOT NULL,
    state     BYTEA NOT NULL,
    signed_at BIGINT NOT NULL,
    PRIMARY KEY (node_id, size, cosigner)
);
-- A witness's newest cosignature of a node, however many others cosign it.
CREATE INDEX evidence_cosignatures_by_cosigner ON evidence_cosignatures (node_id, cosigner, size);

-- The key each node's checkpoints verify with, published once: a node
-- whose key changes is refused rather than trusted anew.
CREATE TABLE evidence_keys (
    node_id      TEXT COLLATE "C" PRIMARY KEY,
    verifier_key TEXT NOT NULL,
    published_at BIGINT NOT NULL
);

-- Finished session recordings (Kubernetes exec/attach, SSH), copied here by
-- the node that made them so any node can replay them. The evidence log
-- holds each one's SHA-256; readers check it.
CREATE TABLE recordings (
    name      TEXT COLLATE "C" PRIMARY KEY,
    node_id   TEXT COLLATE "C" NOT NULL,
    sha256    TEXT NOT NULL,
    bytes     BYTEA NOT NULL,
    stored_at BIGINT NOT NULL
);
CREATE INDEX recordings_by_node ON recordings (node_id);
