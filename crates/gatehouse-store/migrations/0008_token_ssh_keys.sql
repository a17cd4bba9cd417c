-- A registered SSH public key is a credential of the tokens table: its
-- record's id is derived from the key, its secret_hash is the key's
-- SHA-256, and ssh_key names it (its SHA256 fingerprint). NULL for a
-- service token.
ALTER TABLE tokens ADD COLUMN ssh_key TEXT;
