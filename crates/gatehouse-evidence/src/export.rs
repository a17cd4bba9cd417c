//! Export formats: the log as JSON lines, OCSF 1.3 events or CEF lines,
//! each carrying its integrity fields (sequence number, leaf hash, the link
//! to the entry before, and the checkpoint that covers it). Used by
//! `gatehouse audit export` and by live sinks.

use crate::merkle::leaf_hash;
use crate::{Checkpoint, Entry, EventKind};
use serde_json::{json, Map, Value};
use std::str::FromStr;

/// An export format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One JSON object per line: the entry and its integrity fields.
    Jsonl,
    /// OCSF 1.3.0 events, one per line.
    Ocsf,
    /// ArcSight Common Event Format lines.
    Cef,
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "jsonl" => Ok(Self::Jsonl),
            "ocsf" => Ok(Self::Ocsf),
            "cef" => Ok(Self::Cef),
            other => Err(format!(
                "unknown format {other:?}: expected jsonl, ocsf or cef"
            )),
        }
    }
}

/// The OCSF schema version the events follow.
pub const OCSF_VERSION: &str = "1.3.0";
const PRODUCT: &str = "Gatehouse";
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What a session's start said of it: who, from where, to what, over
/// which protocol. Later events of the session name only its id.
#[derive(Clone, Debug, Default)]
pub struct SessionFacts {
    subject: String,
    client_addr: String,
    connection: String,
    protocol: String,
    /// Texts of its statements (requests) whose results were not seen yet,
    /// by their number in the session: a result names only that number.
    statements: std::collections::HashMap<u64, String>,
}

/// Statements a session keeps awaiting their results (the oldest are
/// forgotten past it: a result then carries no text).
const STATEMENTS_INDEXED: usize = 256;

/// The sessions seen so far in an export, so each event of a session can
/// carry its identity, client address and connection (OCSF, CEF). A
/// session whose start came before the export began stays unknown: its
/// events then leave those fields out rather than make them up.
#[derive(Default)]
pub struct SessionIndex {
    open: std::collections::HashMap<String, SessionFacts>,
}

/// Sessions an index keeps (the oldest are forgotten past it).
const SESSIONS_INDEXED: usize = 100_000;

impl SessionIndex {
    /// Notes a session start; forgets a session at its end (after its own
    /// end event was exported: call this after exporting the entry). A
    /// reader that may read an entry again (a sink retrying a batch) calls
    /// [`remember`](Self::remember) instead.
    pub fn observe(&mut self, entry: &Entry) {
        self.note(entry, true);
    }

    /// Notes a session start and keeps it (up to the bound).
    pub fn remember(&mut self, entry: &Entry) {
        self.note(entry, false);
    }

    fn note(&mut self, entry: &Entry, forget_ended: bool) {
        let p = &entry.event.payload;
        let id = || p.get("session").and_then(Value::as_str).map(str::to_string);
        match entry.event.kind {
            EventKind::SessionStart => {
                if self.open.len() >= SESSIONS_INDEXED {
                    self.open.clear();
                }
                if let Some(id) = id() {
                    let s = |k: &str| {
                        p.pointer(k)
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string()
                    };
                    self.open.insert(
                        id,
                        SessionFacts {
                            subject: s("/identity/subject"),
                            client_addr: s("/client_addr"),
                            connection: s("/connection"),
                            protocol: s("/protocol"),
                            statements: Default::default(),
                        },
                    );
                }
            }
            EventKind::Statement => {
                let seq = p.get("seq").and_then(Value::as_u64);
                let text = p.get("text").and_then(Value::as_str);
                if let (Some(facts), Some(seq), Some(text)) =
                    (id().and_then(|id| self.open.get_mut(&id)), seq, text)
                {
                    if facts.statements.len() >= STATEMENTS_INDEXED {
                        facts.statements.clear();
                    }
                    facts.statements.insert(seq, text.to_string());
                }
            }
            EventKind::StatementResult if forget_ended => {
                let seq = p.get("seq").and_then(Value::as_u64);
                if let (Some(facts), Some(seq)) = (id().and_then(|id| self.open.get_mut(&id)), seq)
                {
                    facts.statements.remove(&seq);
                }
            }
            EventKind::SessionEnd if forget_ended => {
                if let Some(id) = id() {
                    self.open.remove(&id);
                }
            }
            _ => {}
        }
    }

    /// The facts of `entry`'s session, when its start was seen.
    pub fn of(&self, entry: &Entry) -> Option<&SessionFacts> {
        let id = entry.event.payload.get("session")?.as_str()?;
        self.open.get(id)
    }
}

/// One entry ready for export.
pub struct Exported<'a> {
    /// The decoded entry.
    pub entry: &'a Entry,
    /// Its stored bytes (what the leaf hash covers).
    pub bytes: &'a [u8],
    /// The smallest checkpoint covering it, if one does yet.
    pub checkpoint: Option<&'a Checkpoint>,
    /// Its session, when the export saw the session start.
    pub session: Option<&'a SessionFacts>,
}

impl Exported<'_> {
    fn integrity(&self) -> Value {
        let mut m = Map::new();
        m.insert("seq".into(), self.entry.seq.into());
        m.insert("node".into(), self.entry.node.clone().into());
        m.insert(
            "leaf_hash".into(),
            hex::encode(leaf_hash(self.bytes)).into(),
        );
        m.insert("prev".into(), hex::encode(self.entry.prev).into());
        if let Some(cp) = self.checkpoint {
            m.insert(
                "checkpoint".into(),
                json!({"origin": cp.origin, "size": cp.size, "root": hex::encode(cp.root)}),
            );
        }
        Value::Object(m)
    }

    /// The line for `format`.
    pub fn line(&self, format: Format) -> String {
        match format {
            Format::Jsonl => json!({
                "seq": self.entry.seq,
                "node": self.entry.node,
                "kind": self.entry.event.kind.as_str(),
                "time": self.entry.event.time,
                "payload": self.entry.event.payload,
                "integrity": self.integrity(),
            })
            .to_string(),
            Format::Ocsf => self.ocsf().to_string(),
            Format::Cef => self.cef(),
        }
    }

    /// Whether the event records a refusal or a failure.
    pub fn is_failure(&self) -> bool {
        self.classify().2 == 2
    }

    fn millis(&self) -> i64 {
        humantime::parse_rfc3339(&self.entry.event.time)
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as i64)
    }

    fn p(&self, key: &str) -> &Value {
        self.entry.event.payload.get(key).unwrap_or(&Value::Null)
    }

    fn ps(&self, key: &str) -> &str {
        self.p(key).as_str().unwrap_or("")
    }

    /// A payload string, else what the session's start said (`""` when
    /// neither knows).
    fn known(&self, key: &str) -> &str {
        match self.ps(key) {
            "" => self.session.map_or("", |s| match key {
                "client_addr" => s.client_addr.as_str(),
                "connection" => s.connection.as_str(),
                "protocol" => s.protocol.as_str(),
                // A result's statement, from the statement event before it.
                "text" => self
                    .p("seq")
                    .as_u64()
                    .and_then(|seq| s.statements.get(&seq))
                    .map_or("", String::as_str),
                _ => "",
            }),
            v => v,
        }
    }

    /// The caller: the identity's subject, wherever the payload keeps it.
    fn subject(&self) -> Option<&str> {
        let p = &self.entry.event.payload;
        p.pointer("/identity/subject")
            .or_else(|| p.get("identity"))
            .or_else(|| p.get("subject"))
            .and_then(Value::as_str)
            .or_else(|| self.session.map(|s| s.subject.as_str()))
            .filter(|s| !s.is_empty())
    }

    /// Where the caller came from; `None` when the event does not say.
    fn src_endpoint(&self) -> Option<Value> {
        let addr = self.known("client_addr");
        if addr.is_empty() {
            return None;
        }
        Some(match addr.rsplit_once(':') {
            Some((ip, port)) => json!({
                "ip": ip.trim_start_matches('[').trim_end_matches(']'),
                "port": port.parse::<u16>().ok(),
            }),
            None => json!({"ip": addr}),
        })
    }

    /// OCSF class, activity, status (1 success, 2 failure) and message.
    fn classify(&self) -> (u32, u32, u32, String) {
        let decision = self
            .p("decision")
            .get("decision")
            .and_then(Value::as_str)
            .unwrap_or("");
        match self.entry.event.kind {
            EventKind::AuthSuccess => (3002, 1, 1, "login accepted".into()),
            EventKind::AuthFailure => (
                3002,
                1,
                2,
                format!(
                    "login refused ({}): {}",
                    self.ps("stage"),
                    self.ps("reason")
                ),
            ),
            EventKind::SessionStart => (3002, 1, 1, "session started".into()),
            EventKind::SessionEnd => (3002, 2, 1, format!("session ended: {}", self.ps("reason"))),
            EventKind::Statement if self.is_http() => {
                let refused = matches!(decision, "deny" | "review");
                (
                    6003,
                    self.api_activity(),
                    if refused { 2 } else { 1 },
                    format!("request {decision}"),
                )
            }
            EventKind::StatementResult if self.is_http() => {
                let ok = self.ps("status") == "ok";
                (
                    6003,
                    self.api_activity(),
                    if ok { 1 } else { 2 },
                    format!("request {}", self.ps("status")),
                )
            }
            EventKind::Statement => {
                let refused = matches!(decision, "deny" | "review");
                (
                    6005,
                    4,
                    if refused { 2 } else { 1 },
                    format!("statement {decision}"),
                )
            }
            EventKind::StatementResult => {
                let ok = self.ps("status") == "ok";
                (
                    6005,
                    4,
                    if ok { 1 } else { 2 },
                    format!("statement {}", self.ps("status")),
                )
            }
            EventKind::ApprovalRequested
            | EventKind::ApprovalApproved
            | EventKind::ApprovalDenied
            | EventKind::ApprovalExpired => {
                let ok = self.entry.event.kind != EventKind::ApprovalDenied
                    && self.entry.event.kind != EventKind::ApprovalExpired;
                // An approval assigns the privilege to run one statement
                // once; the other steps are "other" activities.
                let granted = self.entry.event.kind == EventKind::ApprovalApproved;
                (
                    3003,
                    if granted { 1 } else { 99 },
                    if ok { 1 } else { 2 },
                    self.entry.event.kind.as_str().replace('_', " "),
                )
            }
            other => (0, 0, 1, other.as_str().replace('_', " ")),
        }
    }

    fn ocsf(&self) -> Value {
        let (class_uid, activity_id, status_id, message) = self.classify();
        let category_uid = class_uid / 1000;
        let mut ev = Map::new();
        ev.insert("class_uid".into(), class_uid.into());
        ev.insert("category_uid".into(), category_uid.into());
        ev.insert("activity_id".into(), activity_id.into());
        ev.insert(
            "type_uid".into(),
            (u64::from(class_uid) * 100 + u64::from(activity_id)).into(),
        );
        ev.insert(
            "severity_id".into(),
            (if status_id == 2 { 3 } else { 1 }).into(),
        );
        ev.insert("status_id".into(), status_id.into());
        ev.insert("time".into(), self.millis().into());
        ev.insert("message".into(), message.into());
        ev.insert(
            "metadata".into(),
            json!({
                "version": OCSF_VERSION,
                "product": {"name": PRODUCT, "vendor_name": PRODUCT, "version": VERSION},
                "uid": format!("{}:{}", self.entry.node, self.entry.seq),
                "sequence": self.entry.seq,
                "event_code": self.entry.event.kind.as_str(),
                "original_time": self.entry.event.time,
            }),
        );
        let user = self.subject().map(|s| json!({"name": s, "type_id": 3}));
        let actor = user.clone().map(|u| json!({"user": u}));
        let src = self.src_endpoint();
        let session = Some(self.known("session"))
            .filter(|s| !s.is_empty())
            .map(|s| json!({"uid": s}));
        let connection = Some(self.known("connection"))
            .filter(|c| !c.is_empty())
            .map(str::to_string);
        match class_uid {
            3002 => {
                // A refused credential names no one: the class requires a
                // user, so it is an account of unknown type, with no name
                // made up for it.
                put(
                    &mut ev,
                    "user",
                    user.or_else(|| Some(json!({"account": {"type_id": 0, "type": "Unknown"}}))),
                );
                put(&mut ev, "service", Some(json!({"name": self.service()})));
                put(&mut ev, "src_endpoint", src);
                put(&mut ev, "session", session);
            }
            6005 => {
                put(&mut ev, "actor", actor);
                put(&mut ev, "src_endpoint", src);
                let mut db = json!({"type_id": 1, "type": "Relational"});
                if let Some(c) = &connection {
                    db["name"] = c.clone().into();
                }
                ev.insert("database".into(), db);
                ev.insert("type_id".into(), 1.into());
                let text = self.known("text");
                if !text.is_empty() {
                    ev.insert("query_info".into(), json!({"query_string": text}));
                }
                put(&mut ev, "session", session);
            }
            6003 => {
                put(&mut ev, "actor", actor);
                put(&mut ev, "src_endpoint", src);
                let text = self.known("text");
                let (method, target) = text.split_once(' ').unwrap_or((text, ""));
                let mut api = json!({});
                if let Some(c) = &connection {
                    api["service"] = json!({"name": c});
                }
                if !method.is_empty() {
                    api["operation"] = method.into();
                    if self.known("protocol") == "mcp" {
                        // `tools/call query_db {…}`: the tool, resource or prompt.
                        let name = target.split(' ').next().unwrap_or("");
                        if !name.is_empty() {
                            ev.insert("resources".into(), json!([{"name": name}]));
                        }
                    } else {
                        ev.insert(
                            "http_request".into(),
                            json!({"http_method": method, "url": {"path": target}}),
                        );
                    }
                }
                ev.insert("api".into(), api);
                put(&mut ev, "session", session);
            }
            3003 => {
                put(&mut ev, "user", user);
                put(&mut ev, "session", session);
                let text = self.known("text");
                if !text.is_empty() {
                    ev.insert("privileges".into(), json!([format!("run once: {text}")]));
                }
            }
            _ => {}
        }
        ev.insert(
            "unmapped".into(),
            json!({"gatehouse": {"payload": self.entry.event.payload, "integrity": self.integrity()}}),
        );
        Value::Object(ev)
    }

    /// A request to an HTTP connection (OCSF API Activity) rather than a
    /// SQL statement (Datastore Activity).
    fn is_http(&self) -> bool {
        matches!(self.known("protocol"), "http" | "mcp" | "kubernetes")
    }

    /// API Activity's activity: 1 create, 2 read, 3 update, 4 delete, 99 other.
    fn api_activity(&self) -> u32 {
        match self.known("text").split(' ').next().unwrap_or("") {
            "POST" => 1,
            "GET" | "HEAD" | "OPTIONS" | "tools/list" | "resources/list" | "resources/read"
            | "prompts/list" | "prompts/get" => 2,
            "PUT" | "PATCH" => 3,
            "DELETE" => 4,
            _ => 99,
        }
    }

    fn service(&self) -> String {
        let c = self.known("connection");
        if c.is_empty() {
            PRODUCT.into()
        } else {
            c.into()
        }
    }

    fn cef(&self) -> String {
        let (_, _, status, message) = self.classify();
        let kind = self.entry.event.kind.as_str();
        let severity = if status == 2 { 5 } else { 3 };
        let mut ext: Vec<(&str, String)> = vec![
            ("rt", self.millis().to_string()),
            ("msg", message),
            ("cn1Label", "chainSeq".into()),
            ("cn1", self.entry.seq.to_string()),
            ("cs1Label", "leafHash".into()),
            ("cs1", hex::encode(leaf_hash(self.bytes))),
            ("cs2Label", "node".into()),
            ("cs2", self.entry.node.clone()),
        ];
        if let Some(s) = self.subject() {
            ext.push(("suser", s.into()));
        }
        let addr = self.src_endpoint().unwrap_or(Value::Null);
        if let Some(ip) = addr
            .get("ip")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            ext.push(("src", ip.into()));
        }
        if let Some(port) = addr.get("port").and_then(Value::as_u64) {
            ext.push(("spt", port.to_string()));
        }
        if !self.ps("session").is_empty() {
            ext.push(("cs3Label", "session".into()));
            ext.push(("cs3", self.ps("session").into()));
        }
        if !self.ps("connection").is_empty() {
            ext.push(("dvchost", self.ps("connection").into()));
        }
        if let Some(d) = self.p("decision").get("decision").and_then(Value::as_str) {
            ext.push(("act", d.into()));
        }
        if !self.ps("text").is_empty() {
            ext.push(("request", self.ps("text").into()));
        }
        if let Some(cp) = self.checkpoint {
            ext.push(("cs4Label", "checkpointSize".into()));
            ext.push(("cs4", cp.size.to_string()));
            ext.push(("cs5Label", "checkpointRoot".into()));
            ext.push(("cs5", hex::encode(cp.root)));
        }
        ext.push((
            "outcome",
            if status == 2 { "failure" } else { "success" }.into(),
        ));
        let ext: Vec<String> = ext
            .into_iter()
            .map(|(k, v)| format!("{k}={}", cef_value(&v)))
            .collect();
        format!(
            "CEF:0|{PRODUCT}|{PRODUCT}|{}|{}|{}|{severity}|{}",
            cef_header(VERSION),
            cef_header(kind),
            cef_header(&kind.replace('_', " ")),
            ext.join(" ")
        )
    }
}

/// Escapes a CEF header field: backslash and pipe.
fn cef_header(s: &str) -> String {
    s.replace('\\', "\\\\").replace('|', "\\|")
}

/// Escapes a CEF extension value: backslash, equals sign, line breaks.
fn cef_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '=' => out.push_str("\\="),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

/// Sets `key` when there is a value: OCSF events leave out what they do not know.
fn put(ev: &mut Map<String, Value>, key: &str, v: Option<Value>) {
    if let Some(v) = v {
        ev.insert(key.into(), v);
    }
}
