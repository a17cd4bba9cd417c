//! The evidence pack's tables, each read off the log's entries: every row
//! names the entry (sequence number) it comes from, so each can be proven.

use gatehouse_evidence::{Entry, EventKind};
use serde_json::Value;

/// One table of the pack, written as CSV and as JSON.
pub struct Table {
    /// File stem: `sessions` → `sessions.csv`, `sessions.json`.
    pub name: &'static str,
    /// Column names; the first is always `seq`.
    pub columns: &'static [&'static str],
    /// Rows of text, in column order.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    fn new(name: &'static str, columns: &'static [&'static str]) -> Self {
        Self {
            name,
            columns,
            rows: Vec::new(),
        }
    }

    /// The sequence numbers the rows come from.
    pub fn seqs(&self) -> impl Iterator<Item = u64> + '_ {
        self.rows.iter().filter_map(|r| r.first()?.parse().ok())
    }

    /// RFC 4180 CSV.
    pub fn csv(&self) -> String {
        let mut out = String::new();
        push_csv_row(&mut out, self.columns.iter().copied());
        for r in &self.rows {
            push_csv_row(&mut out, r.iter().map(String::as_str));
        }
        out
    }

    /// A JSON array of objects keyed by column.
    pub fn json(&self) -> Value {
        Value::Array(
            self.rows
                .iter()
                .map(|r| {
                    Value::Object(
                        self.columns
                            .iter()
                            .zip(r)
                            .map(|(c, v)| (c.to_string(), Value::String(v.clone())))
                            .collect(),
                    )
                })
                .collect(),
        )
    }
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
    pub fn new() -> Self {
        Self {
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
            denials: Table::new(
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
            ),
            approvals: Table::new(
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
            ),
            masking: Table::new(
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
            ),
            policy_changes: Table::new(
                "policy-changes",
                &["seq", "time", "kind", "trigger", "mode", "file", "sha256"],
            ),
            tokens: Table::new(
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
            ),
            access_reviews: Table::new(
                "access-reviews",
                &["seq", "time", "reviewer", "identities", "digest", "notes"],
            ),
            open: Default::default(),
        }
    }

    /// Adds what `e` (the next entry of the period) puts in a table.
    pub fn observe(&mut self, e: &Entry) {
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
            EventKind::AuthFailure => t.denials.rows.push(vec![
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
            ]),
            EventKind::Statement => {
                let decision = text(p, "/decision/decision");
                if decision != "allow" {
                    // What was refused: a SQL statement, an HTTP request, an MCP message.
                    let kind = match text(p, "/protocol").as_str() {
                        "http" => "request",
                        "mcp" => "mcp message",
                        _ => "statement",
                    };
                    t.denials.rows.push(vec![
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
                    ]);
                }
            }
            EventKind::ApprovalRequested
            | EventKind::ApprovalApproved
            | EventKind::ApprovalDenied
            | EventKind::ApprovalExpired => t.approvals.rows.push(vec![
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
            ]),
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
                t.masking.rows.push(vec![
                    seq,
                    time,
                    text(p, "/session"),
                    text(p, "/seq"),
                    text(p, "/masking/values_masked"),
                    pairs("rules"),
                    pairs("detectors"),
                    text(p, "/masking/exempt_group"),
                ]);
            }
            EventKind::PolicyLoaded => {
                for f in p
                    .get("files")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    t.policy_changes.rows.push(vec![
                        seq.clone(),
                        time.clone(),
                        "policy_loaded".into(),
                        text(p, "/trigger"),
                        text(p, "/mode"),
                        text(f, "/path"),
                        text(f, "/sha256"),
                    ]);
                }
            }
            EventKind::ConfigLoaded => t.policy_changes.rows.push(vec![
                seq,
                time,
                "config_loaded".into(),
                "start".into(),
                String::new(),
                text(p, "/path"),
                text(p, "/sha256"),
            ]),
            EventKind::TokenCreated | EventKind::TokenRevoked => t.tokens.rows.push(vec![
                seq,
                time,
                e.event.kind.as_str().into(),
                text(p, "/token_id"),
                text(p, "/identity"),
                text(p, "/groups"),
                text(p, "/expires_at"),
                text(p, "/revoked_at"),
            ]),
            EventKind::AccessReview => t.access_reviews.rows.push(vec![
                seq,
                time,
                text(p, "/reviewer"),
                p.get("review")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len)
                    .to_string(),
                text(p, "/digest"),
                text(p, "/notes"),
            ]),
            _ => {}
        }
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
