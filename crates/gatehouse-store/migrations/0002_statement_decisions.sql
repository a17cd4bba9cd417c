-- The policy decision recorded with each statement.
ALTER TABLE statements ADD COLUMN decision TEXT;
ALTER TABLE statements ADD COLUMN decision_policies_json TEXT;
ALTER TABLE statements ADD COLUMN policy_mode TEXT;
ALTER TABLE statements ADD COLUMN decision_reason TEXT;
