//! The evidence pack's tables, each read off the log's entries: every row
//! names the entry (sequence number) it comes from, so each can be proven.

use gatehouse_evidence::{Entry, EventKind};
use serde_json::Value;
use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::Path;

/// One table of the pack, written as CSV and as JSON: held in memory and
/// written at the end, or (a table whose rows never change once added)
/// written row by row as the log streams past, so that a day of a million
/// refusals does not sit in memory.
pub struct Table {
    /// File stem: `sessions` → `sessions.csv`, `sessions.json`.
    pub name: &'static str,
    /// Column names; the first is always `seq`.
    pub columns: &'static [&'static str],
    /// Rows of text, in column order, held until written.
    pub rows: Vec<Vec<String>>,
    /// Where a streamed table's rows go as they come.
    files: Option<TableFiles>,
    /// Rows written to `files`.
    written: usize,
    /// The sequence numbers of the rows written to `files`.
    written_seqs: Vec<u64>,
}

/// A streamed table's two files, open.
struct TableFiles {
    csv: BufWriter<File>,
    json: BufWriter<File>,
}

impl Table {
    /// A table held in memory.
    pub fn new(name: &'static str, columns: &'static [&'static str]) -> Self {
        Self {
            name,
            columns,
            rows: Vec::new(),
            files: None,
            written: 0,
            written_seqs: Vec::new(),
        }
    }

    /// A table written to `dir` row by row.
    fn streamed(
        name: &'static str,
        columns: &'static [&'static str],
        dir: &Path,
    ) -> std::io::Result<Self> {
        let create =
            |ext: &str| File::create(dir.join(format!("{name}.{ext}"))).map(BufWriter::new);
        let mut files = TableFiles {
            csv: create("csv")?,
            json: create("json")?,
        };
        let mut head = String::new();
        push_csv_row(&mut head, columns.iter().copied());
        files.csv.write_all(head.as_bytes())?;
        files.json.write_all(b"[")?;
        Ok(Self {
            files: Some(files),
            ..Self::new(name, columns)
        })
    }

    /// Adds a row (written at once if the table is streamed).
    pub fn push(&mut self, row: Vec<String>) -> std::io::Result<()> {
        let Some(files) = &mut self.files else {
            self.rows.push(row);
            return Ok(());
        };
        let mut line = String::new();
        push_csv_row(&mut line, row.iter().map(String::as_str));
        files.csv.write_all(line.as_bytes())?;
        // The pretty-printed array's element, as `json()` would print it.
        let object = row_json(self.columns, &row);
        let text = serde_json::to_string_pretty(&object).map_err(std::io::Error::other)?;
        files
            .json
            .write_all(if self.written == 0 { b"\n" } else { b",\n" })?;
        for (i, l) in text.lines().enumerate() {
            if i > 0 {
                files.json.write_all(b"\n")?;
            }
            files.json.write_all(b"  ")?;
            files.json.write_all(l.as_bytes())?;
        }
        if let Some(seq) = row.first().and_then(|s| s.parse().ok()) {
            self.written_seqs.push(seq);
        }
        self.written += 1;
        Ok(())
    }

    /// How many rows it has.
    pub fn len(&self) -> usize {
        self.rows.len() + self.written
    }

    /// The sequence numbers the rows come from.
    pub fn seqs(&self) -> impl Iterator<Item = u64> + '_ {
        self.written_seqs
            .iter()
            .copied()
            .chain(self.rows.iter().filter_map(|r| r.first()?.parse().ok()))
    }

    /// Writes (or finishes writing) its two files in `dir`.
    pub fn write(&mut self, dir: &Path) -> std::io::Result<()> {
        match self.files.take() {
            Some(mut files) => {
                files
                    .json
                    .write_all(if self.written == 0 { b"]\n" } else { b"\n]\n" })?;
                files.csv.flush()?;
                files.json.flush()
            }
            None => {
                std::fs::write(dir.join(format!("{}.csv", self.name)), self.csv())?;
                let json =
                    serde_json::to_string_pretty(&self.json()).map_err(std::io::Error::other)?;
                std::fs::write(dir.join(format!("{}.json", self.name)), json + "\n")
            }
        }
    }

    /// RFC 4180 CSV of the rows held.
    pub fn csv(&self) -> String {
        let mut out = String::new();
        push_csv_row(&mut out, self.columns.iter().copied());
        for r in &self.rows {
            push_csv_row(&mut out, r.iter().map(String::as_str));
        }
        out
    }

    /// A JSON array of objects keyed by column, of the rows held.
    pub fn json(&self) -> Value {
        Value::Array(
            self.rows
                .iter()
                .map(|r| row_json(self.columns, r))
                .collect(),
        )
    }
}

/// One row as a JSON object keyed by column.
fn row_json(columns: &[&str], row: &[String]) -> Value {
    Value::Object(
        columns
            .iter()
            .zip(row)
            .map(|(c, v)| (c.to_string(), Value::String(v.clone())))
            .collect(),
    )
}

fn push_csv_row<'a>(out: &mut String, cells: impl Iterator<Item = &'a str>) {
    for (i, c) in cells.enumerate() {
        if i > 0 {
            out.push(',');
        }
        if c.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&c.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(c);
        }
    }
    out.push_str("\r\n");
}

fn text(v: &Value, pointer: &str) -> String {
    match v.pointer(pointer) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
            .collect::<Vec<_>>()
            .join(" "),
        Some(other) => other.to_string(),
    }
}

/// The tables of the pack, from the period's entries.
pub struct Tables {
    pub sessions: Table,
    pub denials: Table,
    pub approvals: Table,
    pub masking: Table,
    pub policy_changes: Table,
    pub tokens: Table,
    pub access_reviews: Table,
    /// Open sessions: their row in `sessions`.
    open: std::collections::HashMap<String, usize>,
}

impl Tables {
    /// Empty tables; [`Tables::observe`] the period's entries in order.
    /// Every table but `sessions` (whose end fills in its start's row) is
    /// written to `dir` as it grows.
    pub fn new(dir: &Path) -> std::io::Result<Self> {
        Ok(Self {
            sessions: Table::new(
                "sessions",
                &[
                    "seq",
                    "time",
                    "session",
                    "identity",
                    "groups",
                    "connection",
                    "client_addr",
                    "application_name",
                    "ended_at",
                    "end_reason",
                    "end_seq",
                ],
            ),
            denials: Table::streamed(
                "denials",
                &[
                    "seq",
                    "time",
                    "kind",
                    "identity",
                    "connection",
                    "client_addr",
                    "session",
                    "decision",
                    "mode",
                    "policies",
                    "reason",
                    "statement",
                ],
                dir,
            )?,
            approvals: Table::streamed(
                "approvals",
                &[
                    "seq",
                    "time",
                    "kind",
                    "request",
                    "identity",
                    "approver",
                    "statement",
                    "reason",
                ],
                dir,
            )?,
            masking: Table::streamed(
                "masking",
                &[
                    "seq",
                    "time",
                    "session",
                    "statement_seq",
                    "values_masked",
                    "rules",
                    "detectors",
                    "exempt_group",
                ],
                dir,
            )?,
            policy_changes: Table::streamed(
                "policy-changes",
                &["seq", "time", "kind", "trigger", "mode", "file", "sha256"],
                dir,
            )?,
            tokens: Table::streamed(
                "tokens",
                &[
                    "seq",
                    "time",
                    "kind",
                    "token_id",
                    "identity",
                    "groups",
                    "expires_at",
                    "revoked_at",
                ],
                dir,
            )?,
            access_reviews: Table::streamed(
                "access-reviews",
                &["seq", "time", "reviewer", "identities", "digest", "notes"],
                dir,
            )?,
            open: Default::default(),
        })
    }

    /// Adds what `e` (the next entry of the period) puts in a table.
    pub fn observe(&mut self, e: &Entry) -> std::io::Result<()> {
        let t = self;
        // Sessions are one row each: the end fills in its start's row.
        let p = &e.event.payload;
        let seq = e.seq.to_string();
        let time = e.event.time.clone();
        match e.event.kind {
            EventKind::SessionStart => {
                t.open.insert(text(p, "/session"), t.sessions.rows.len());
                t.sessions.rows.push(vec![
                    seq,
                    time,
                    text(p, "/session"),
                    text(p, "/identity/subject"),
                    text(p, "/identity/groups"),
                    text(p, "/connection"),
                    text(p, "/client_addr"),
                    text(p, "/application_name"),
                    String::new(),
                    String::new(),
                    String::new(),
                ]);
            }
            EventKind::SessionEnd => {
                if let Some(&i) = t.open.get(&text(p, "/session")) {
                    let row = &mut t.sessions.rows[i];
                    row[8] = text(p, "/ended_at");
                    row[9] = text(p, "/reason");
                    row[10] = seq;
                }
            }
            EventKind::AuthFailure => t.denials.push(vec![
                seq,
                time,
                "login".into(),
                text(p, "/subject"),
                text(p, "/connection"),
                text(p, "/client_addr"),
                String::new(),
                "deny".into(),
                String::new(),
                String::new(),
                format!("{}: {}", text(p, "/stage"), text(p, "/reason")),
                String::new(),
            ])?,
            EventKind::Statement => {
                let decision = text(p, "/decision/decision");
                if decision != "allow" {
                    // What was refused: a SQL statement, an HTTP request, an MCP message.
                    let kind = match text(p, "/protocol").as_str() {
                        "http" => "request",
                        "kubernetes" => "kubernetes request",
                        "mcp" => "mcp message",
                        _ => "statement",
                    };
                    t.denials.push(vec![
                        seq,
                        time,
                        kind.into(),
                        text(p, "/identity"),
                        text(p, "/connection"),
                        String::new(),
                        text(p, "/session"),
                        decision,
                        text(p, "/decision/mode"),
                        text(p, "/decision/policies"),
                        text(p, "/decision/reason"),
                        text(p, "/text"),
                    ])?;
                }
            }
            EventKind::ApprovalRequested
            | EventKind::ApprovalApproved
            | EventKind::ApprovalDenied
            | EventKind::ApprovalExpired => t.approvals.push(vec![
                seq,
                time,
                e.event.kind.as_str().into(),
                text(p, "/request"),
                text(p, "/identity"),
                text(p, "/approver"),
                text(p, "/text"),
                // An approver's comment, or why a request expired.
                match text(p, "/comment") {
                    c if c.is_empty() => text(p, "/reason"),
                    c => c,
                },
            ])?,
            EventKind::StatementResult if p.get("masking").is_some() => {
                let pairs = |key: &str| {
                    p.pointer(&format!("/masking/{key}"))
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .map(|pair| format!("{}={}", text(pair, "/0"), text(pair, "/1")))
                                .collect::<Vec<_>>()
                                .join(" ")
                        })
                        .unwrap_or_default()
                };
                t.masking.push(vec![
                    seq,
                    time,
                    text(p, "/session"),
                    text(p, "/seq"),
                    text(p, "/masking/values_masked"),
                    pairs("rules"),
                    pairs("detectors"),
                    text(p, "/masking/exempt_group"),
                ])?;
            }
            EventKind::PolicyLoaded => {
                for f in p
                    .get("files")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    t.policy_changes.push(vec![
                        seq.clone(),
                        time.clone(),
                        "policy_loaded".into(),
                        text(p, "/trigger"),
                        text(p, "/mode"),
                        text(f, "/path"),
                        text(f, "/sha256"),
                    ])?;
                }
            }
            EventKind::ConfigLoaded => t.policy_changes.push(vec![
                seq,
                time,
                "config_loaded".into(),
                "start".into(),
                String::new(),
                text(p, "/path"),
                text(p, "/sha256"),
            ])?,
            EventKind::TokenCreated | EventKind::TokenRevoked => t.tokens.push(vec![
                seq,
                time,
                e.event.kind.as_str().into(),
                text(p, "/token_id"),
                text(p, "/identity"),
                text(p, "/groups"),
                text(p, "/expires_at"),
                text(p, "/revoked_at"),
            ])?,
            EventKind::AccessReview => t.access_reviews.push(vec![
                seq,
                time,
                text(p, "/reviewer"),
                p.get("review")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len)
                    .to_string(),
                text(p, "/digest"),
                text(p, "/notes"),
            ])?,
            _ => {}
        }
        Ok(())
    }

    /// Writes (or finishes writing) every table's files in `dir`.
    pub fn write(&mut self, dir: &Path) -> std::io::Result<()> {
        for t in [
            &mut self.sessions,
            &mut self.denials,
            &mut self.approvals,
            &mut self.masking,
            &mut self.policy_changes,
            &mut self.tokens,
            &mut self.access_reviews,
        ] {
            t.write(dir)?;
        }
        Ok(())
    }

    /// Every table, in the order the README lists them.
    pub fn all(&self) -> [&Table; 7] {
        [
            &self.sessions,
            &self.denials,
            &self.approvals,
            &self.masking,
            &self.policy_changes,
            &self.tokens,
            &self.access_reviews,
        ]
    }
}
