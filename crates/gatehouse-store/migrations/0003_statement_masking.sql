-- What masking did to each statement's results (JSON: counts by detector and rule).
ALTER TABLE statements ADD COLUMN masking_json TEXT;
