-- Long statement texts, stored once by content however many records name
-- them: a statement held for approval is named by its approval request and
-- by its session record (twice in request mode: refused, then run), and an
-- application that sends the same long query again and again names it once
-- per run. Texts under 1 KiB stay in their rows (a reference would cost
-- about as much as the text).
CREATE TABLE statement_texts (
    sha256 TEXT PRIMARY KEY NOT NULL,
    text   TEXT NOT NULL
);
ALTER TABLE statements ADD COLUMN text_sha256 TEXT;
ALTER TABLE approvals ADD COLUMN text_sha256 TEXT;
