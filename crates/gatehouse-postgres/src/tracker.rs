//! Pairs what the client sent with how the backend answered, so every
//! statement can be recorded with its timing and outcome.
//!
//! Requests are queued in the order sent: a simple Query, a FunctionCall, an
//! extended-protocol Execute, or a Sync. Backend answers complete them in the
//! same order: CommandComplete / EmptyQueryResponse / PortalSuspended /
//! ErrorResponse complete an Execute; a simple Query or FunctionCall collects
//! tags until its ReadyForQuery; ReadyForQuery consumes one Sync, dropping the
//! Executes the backend skipped after an error.

use crate::codec::backend::{parse_command_tag, parse_error_fields, rows_from_tag};
use crate::codec::frontend::{
    parse_bind, parse_close, parse_execute, parse_function_call, parse_parse, parse_query,
    BindValue, CloseTarget,
};
use crate::codec::CodecError;
use gatehouse_core::{SessionId, StatementOutcome, StatementRecord, Timestamp};
use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

/// Longest statement text kept in a record.
const MAX_TEXT: usize = 1 << 20;
/// Longest parameter value kept in a record.
const MAX_PARAM: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Simple,
    Extended,
    FunctionCall,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Simple => "simple",
            Kind::Extended => "extended",
            Kind::FunctionCall => "function_call",
        }
    }
}

struct InFlight {
    kind: Kind,
    seq: u64,
    text: Arc<str>,
    params: Vec<Option<String>>,
    started_at: Timestamp,
    t0: Instant,
    tags: String,
    rows: Option<u64>,
    error: Option<(String, String)>,
}

enum Pending {
    Statement(InFlight),
    Sync,
}

struct Portal {
    text: Arc<str>,
    params: Vec<Option<String>>,
}

/// Frontend message types the tracker needs to see whole.
pub(crate) fn frontend_inspects(ty: u8) -> bool {
    matches!(ty, b'Q' | b'P' | b'B' | b'E' | b'S' | b'C' | b'F' | b'X')
}

/// Backend message types the tracker needs to see whole.
pub(crate) fn backend_inspects(ty: u8) -> bool {
    matches!(ty, b'C' | b'E' | b'I' | b's' | b'Z')
}

/// Per-session statement state.
pub(crate) struct Tracker {
    session_id: SessionId,
    next_seq: u64,
    prepared: HashMap<String, Arc<str>>,
    portals: HashMap<String, Portal>,
    pending: VecDeque<Pending>,
    /// Statement text of the latest Parse, for errors raised before any Execute.
    last_parse: Option<Arc<str>>,
    /// Completed records waiting to be handed to the recorder.
    pub(crate) done: Vec<StatementRecord>,
    /// The client sent Terminate.
    pub(crate) terminated: bool,
}

impl Tracker {
    pub(crate) fn new(session_id: SessionId) -> Self {
        Self {
            session_id,
            next_seq: 1,
            prepared: HashMap::new(),
            portals: HashMap::new(),
            pending: VecDeque::new(),
            last_parse: None,
            done: Vec::new(),
            terminated: false,
        }
    }

    fn push(&mut self, kind: Kind, text: Arc<str>, params: Vec<Option<String>>) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.pending.push_back(Pending::Statement(InFlight {
            kind,
            seq,
            text,
            params,
            started_at: Timestamp::now(),
            t0: Instant::now(),
            tags: String::new(),
            rows: None,
            error: None,
        }));
    }

    /// Notes a message the client sent (only types for which [`frontend_inspects`] holds).
    pub(crate) fn on_frontend(&mut self, ty: u8, body: &[u8]) -> Result<(), CodecError> {
        match ty {
            b'Q' => {
                let q = parse_query(body)?;
                self.push(Kind::Simple, truncated(q), Vec::new());
            }
            b'P' => {
                let p = parse_parse(body)?;
                let text = truncated(p.query);
                self.last_parse = Some(text.clone());
                self.prepared.insert(p.name.to_string(), text);
            }
            b'B' => {
                let b = parse_bind(body)?;
                let text = self.prepared.get(b.statement).cloned().unwrap_or_else(|| {
                    Arc::from(format!("<unknown prepared statement {:?}>", b.statement))
                });
                let params = b.params.iter().map(param_text).collect();
                self.portals
                    .insert(b.portal.to_string(), Portal { text, params });
            }
            b'E' => {
                let name = parse_execute(body)?;
                let (text, params) = match self.portals.get(name) {
                    Some(p) => (p.text.clone(), p.params.clone()),
                    None => (Arc::from(format!("<unknown portal {name:?}>")), Vec::new()),
                };
                self.push(Kind::Extended, text, params);
            }
            b'S' => self.pending.push_back(Pending::Sync),
            b'C' => match parse_close(body)? {
                CloseTarget::Statement(n) => {
                    self.prepared.remove(n);
                }
                CloseTarget::Portal(n) => {
                    self.portals.remove(n);
                }
            },
            b'F' => {
                let oid = parse_function_call(body)?;
                self.push(
                    Kind::FunctionCall,
                    Arc::from(format!("<function call oid={oid}>")),
                    Vec::new(),
                );
            }
            b'X' => self.terminated = true,
            _ => {}
        }
        Ok(())
    }

    /// Notes a message the backend sent (only types for which [`backend_inspects`] holds).
    pub(crate) fn on_backend(&mut self, ty: u8, body: &[u8]) -> Result<(), CodecError> {
        match ty {
            b'C' => {
                let tag = parse_command_tag(body)?;
                if let Some(Pending::Statement(s)) = self.pending.front_mut() {
                    if !s.tags.is_empty() {
                        s.tags.push_str("; ");
                    }
                    s.tags.push_str(tag);
                    if let Some(n) = rows_from_tag(tag) {
                        s.rows = Some(s.rows.unwrap_or(0) + n);
                    }
                    if s.kind == Kind::Extended {
                        self.complete_front();
                    }
                }
            }
            b'I' | b's' => {
                if let Some(Pending::Statement(s)) = self.pending.front_mut() {
                    if s.kind == Kind::Extended {
                        if ty == b's' {
                            s.tags.push_str("(portal suspended)");
                        }
                        self.complete_front();
                    }
                }
            }
            b'E' => {
                let f = parse_error_fields(body)?;
                match self.pending.front_mut() {
                    Some(Pending::Statement(s)) => {
                        s.error = Some((f.code, f.message));
                        if s.kind == Kind::Extended {
                            self.complete_front();
                        }
                    }
                    Some(Pending::Sync) => {
                        // Parse or Bind failed before any Execute of this batch.
                        let text = self
                            .last_parse
                            .clone()
                            .unwrap_or_else(|| Arc::from("<extended protocol message>"));
                        self.push(Kind::Extended, text, Vec::new());
                        // The pushed statement went to the back; complete it directly.
                        if let Some(Pending::Statement(mut s)) = self.pending.pop_back() {
                            s.error = Some((f.code, f.message));
                            self.finish(s);
                        }
                    }
                    None => {}
                }
            }
            b'Z' => {
                // Executes still queued before the Sync were skipped by the backend.
                while let Some(Pending::Statement(s)) = self.pending.front() {
                    if s.kind != Kind::Extended {
                        break;
                    }
                    self.pending.pop_front();
                }
                match self.pending.front() {
                    Some(Pending::Statement(_)) => self.complete_front(),
                    Some(Pending::Sync) => {
                        self.pending.pop_front();
                    }
                    None => {}
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn complete_front(&mut self) {
        if let Some(Pending::Statement(s)) = self.pending.pop_front() {
            self.finish(s);
        }
    }

    fn finish(&mut self, s: InFlight) {
        let outcome = match s.error {
            Some((sqlstate, message)) => StatementOutcome::Error { sqlstate, message },
            None => StatementOutcome::Ok {
                command_tag: s.tags,
                rows: s.rows,
            },
        };
        self.done.push(record(
            self.session_id,
            s.kind,
            s.seq,
            s.text,
            s.params,
            s.started_at,
            s.t0,
            outcome,
        ));
    }

    /// Statements still waiting for an answer when the session ends.
    pub(crate) fn drain_incomplete(&mut self) {
        while let Some(p) = self.pending.pop_front() {
            if let Pending::Statement(s) = p {
                let r = record(
                    self.session_id,
                    s.kind,
                    s.seq,
                    s.text,
                    s.params,
                    s.started_at,
                    s.t0,
                    StatementOutcome::Incomplete,
                );
                self.done.push(r);
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn record(
    session_id: SessionId,
    kind: Kind,
    seq: u64,
    text: Arc<str>,
    params: Vec<Option<String>>,
    started_at: Timestamp,
    t0: Instant,
    outcome: StatementOutcome,
) -> StatementRecord {
    StatementRecord {
        session_id,
        seq,
        protocol: kind.as_str().to_string(),
        text: text.to_string(),
        params,
        started_at,
        duration_us: t0.elapsed().as_micros() as u64,
        outcome,
    }
}

fn truncated(s: &str) -> Arc<str> {
    if s.len() <= MAX_TEXT {
        return Arc::from(s);
    }
    let mut end = MAX_TEXT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Arc::from(format!("{}… ({} bytes in all)", &s[..end], s.len()))
}

fn param_text(v: &BindValue<'_>) -> Option<String> {
    let (bytes, binary) = match v {
        BindValue::Null => return None,
        BindValue::Text(b) => (*b, false),
        BindValue::Binary(b) => (*b, true),
    };
    let shown = &bytes[..bytes.len().min(MAX_PARAM)];
    let mut s = if binary {
        let mut s = String::with_capacity(2 + 2 * shown.len());
        s.push_str("\\x");
        for b in shown {
            let _ = write!(s, "{b:02x}");
        }
        s
    } else {
        String::from_utf8_lossy(shown).into_owned()
    };
    if bytes.len() > MAX_PARAM {
        let _ = write!(s, "… ({} bytes in all)", bytes.len());
    }
    Some(s)
}

#[cfg(test)]
mod tests;
