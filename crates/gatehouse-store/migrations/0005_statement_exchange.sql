-- What an HTTP request and its response carried (JSON: headers without
-- credentials, sizes, the first bytes of the masked response body).
ALTER TABLE statements ADD COLUMN exchange_json TEXT;
