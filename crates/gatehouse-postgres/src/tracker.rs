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
    parse_bind, parse_close, parse_describe, parse_execute, parse_function_call, parse_parse,
    parse_query, BindValue, CloseTarget, DescribeTarget,
};
use crate::codec::{CodecError, Flow};
use crate::gate::{self, Gate, Prepared, Refusal};
use crate::mask::{Column, ResultFormats, ResultPlan, SessionMasking};
use gatehouse_core::{
    ActionDecided, ActionOutcome, ActionRecord, AuditEvent, DecisionRecord, SessionId, Timestamp,
};
use gatehouse_mask::MaskTally;
use gatehouse_sql::StatementAnalysis;
use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

/// Longest statement text kept in a record.
const MAX_TEXT: usize = 1 << 20;
/// Longest parameter value kept in a record.
const MAX_PARAM: usize = 4096;
/// What a record keeps of a parameter of a statement that holds a secret.
const WITHHELD_PARAMETER: &str = "[masked:password]";

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
    /// Already masked for recording (see `Tracker::recorded_text`).
    text: Arc<str>,
    params: Vec<Option<String>>,
    started_at: Timestamp,
    t0: Instant,
    tags: String,
    rows: Option<u64>,
    error: Option<(String, String)>,
    decision: Option<DecisionRecord>,
    /// Refused: the backend's error for the poison is replaced by this.
    refusal: Option<Refusal>,
    /// Where its result rows come from, for masking.
    result: ResultSource,
    /// How its rows are masked, once known.
    plan: Option<ResultPlan>,
    /// How its COPY rows are masked under column rules, once known.
    copy_plan: Option<crate::mask::CopyPlan>,
    /// What masking did to its results.
    tally: MaskTally,
    /// CommandCompletes received so far (one per statement of a query string).
    answered: usize,
    /// SQL `PREPARE`s among its statements, by position: done when answered.
    sql_prepares: Vec<(usize, Arc<StatementAnalysis>)>,
}

/// What describes a statement's result rows.
#[derive(Default)]
struct ResultSource {
    /// The columns, once described.
    columns: Option<Arc<[Column]>>,
    /// The Bind's result formats; `None`: the description's own formats.
    formats: Option<ResultFormats>,
    /// The Parse and Bind it came from (0: none), to match Describe answers.
    parse_id: u64,
    bind_id: u64,
    /// A `COPY … TO` statement: what it sends.
    copy_out: Option<Arc<StatementAnalysis>>,
}

/// The analysis when it is a `COPY … TO` (kept for masking its rows by column).
fn copy_out(a: Option<&Arc<StatementAnalysis>>) -> Option<Arc<StatementAnalysis>> {
    a.filter(|a| a.copy_out.is_some()).cloned()
}

// The queue lives for the session and is reused; boxing the large variant
// would cost an allocation per statement on the hot path.
#[allow(clippy::large_enum_variant)]
enum Pending {
    Statement(InFlight),
    Sync,
    /// A Describe (tracked only when masking): its RowDescription is matched
    /// to the Parse or Bind it asked about.
    Describe {
        parse_id: u64,
        bind_id: u64,
    },
    /// A Parse or Bind: its name holds what it defines once the backend confirms.
    Define(names::Definition),
}

pub(super) struct Portal {
    statement: Prepared,
    params: Vec<Option<String>>,
    /// For a statement that needs approval: what an approval must cover.
    fingerprint: Option<String>,
    bind_id: u64,
    formats: ResultFormats,
    /// Its columns with their real formats, once a Describe of the portal
    /// was answered.
    columns: Option<Arc<[Column]>>,
}

/// Frontend message types the tracker needs to see whole.
pub(crate) fn frontend_inspects(ty: u8) -> bool {
    matches!(ty, b'Q' | b'P' | b'B' | b'E' | b'S' | b'C' | b'F' | b'X')
}

/// With masking, Describe too (to know each result's columns).
pub(crate) fn frontend_inspects_masked(ty: u8) -> bool {
    frontend_inspects(ty) || ty == b'D'
}

/// Backend message types the tracker needs to see whole.
pub(crate) fn backend_inspects(ty: u8) -> bool {
    matches!(ty, b'C' | b'E' | b'I' | b's' | b'Z' | b'S' | b'1' | b'2')
}

/// With masking, everything that carries values or describes them:
/// RowDescription, NoData, DataRow, CopyOutResponse, CopyData,
/// NoticeResponse and NotificationResponse.
pub(crate) fn backend_inspects_masked(ty: u8) -> bool {
    backend_inspects(ty) || matches!(ty, b'T' | b'n' | b'D' | b'H' | b'd' | b'N' | b'A' | b'V')
}

/// Per-session statement state.
pub(crate) struct Tracker {
    session_id: SessionId,
    next_seq: u64,
    gate: Gate,
    prepared: HashMap<String, Prepared>,
    portals: HashMap<String, Portal>,
    pending: VecDeque<Pending>,
    /// Statement text of the latest Parse, for errors raised before any Execute.
    last_parse: Option<Arc<str>>,
    /// Numbers Parse and Bind messages, from 1.
    next_id: u64,
    /// Masking of results and recordings.
    pub(crate) masking: SessionMasking,
    /// Counts masking outside any statement (notices between statements).
    stray_tally: MaskTally,
    /// Completed records waiting to be handed to the recorder.
    pub(crate) done: Vec<ActionRecord>,
    /// Decisions to make durable in the evidence log before the messages
    /// they decide are forwarded (write-ahead).
    pub(crate) decided: Vec<AuditEvent>,
    /// Approval requests filed and approvals used, made durable with `decided`.
    pub(crate) approval_steps: Vec<gate::ApprovalStep>,
    /// A statement waiting for its approval (hold mode): the relay waits,
    /// then resolves it and scans the statement again.
    pub(crate) held: Option<Held>,
    /// The verdict for the next Query, set when a hold ended without approval.
    next_verdict: Option<gate::Verdict>,
    /// The client sent Terminate.
    pub(crate) terminated: bool,
    /// The backend reported a pinned setting changed (why): the session ends.
    pub(crate) pinned_broken: Option<String>,
}

/// A statement waiting in its session for approval.
pub(crate) struct Held {
    /// The request and how long to wait.
    pub(crate) hold: gate::Hold,
    /// Its `review` verdict, refused if not approved.
    review: gate::Verdict,
}

impl Tracker {
    pub(crate) fn new(session_id: SessionId, gate: Gate, masking: SessionMasking) -> Self {
        Self {
            session_id,
            next_seq: 1,
            gate,
            prepared: HashMap::new(),
            portals: HashMap::new(),
            pending: VecDeque::new(),
            last_parse: None,
            next_id: 1,
            masking,
            stray_tally: MaskTally::default(),
            done: Vec::new(),
            decided: Vec::new(),
            approval_steps: Vec::new(),
            held: None,
            next_verdict: None,
            terminated: false,
            pinned_broken: None,
        }
    }

    fn push(
        &mut self,
        kind: Kind,
        text: Arc<str>,
        params: Vec<Option<String>>,
        decision: Option<DecisionRecord>,
        refusal: Option<Refusal>,
        result: ResultSource,
    ) {
        let seq = self.next_seq;
        self.next_seq += 1;
        if let Some(d) = &decision {
            self.decided.push(AuditEvent::statement(&ActionDecided {
                session: self.session_id,
                seq,
                identity: self.gate.subject(),
                connection: self.gate.connection(),
                protocol: kind.as_str(),
                text: &text,
                parameters: params.len(),
                decision: d,
            }));
        }
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
            decision,
            refusal,
            result,
            plan: None,
            copy_plan: None,
            tally: MaskTally::default(),
            answered: 0,
            sql_prepares: Vec::new(),
        }));
    }

    /// Queues an extended-protocol message no decision applies to (an
    /// unknown portal, a failed Parse or Bind), so its outcome is recorded.
    fn push_undecided(&mut self, text: Arc<str>) {
        self.push(
            Kind::Extended,
            text,
            Vec::new(),
            None,
            None,
            ResultSource::default(),
        );
    }

    /// Queues a statement with its verdict; a refused one is replaced by
    /// `poison`, a held one waits (recorded once decided; now only its
    /// request is filed).
    fn gated(
        &mut self,
        kind: Kind,
        text: Arc<str>,
        params: Vec<Option<String>>,
        mut verdict: gate::Verdict,
        poison: fn() -> bytes::BytesMut,
        result: ResultSource,
    ) -> Flow {
        if let Some(hold) = verdict.hold.take() {
            self.approval_step(verdict.approval.take(), &text, &params);
            self.held = Some(Held {
                hold,
                review: verdict,
            });
            return Flow::Wait;
        }
        let refused = verdict.refusal.is_some();
        if verdict.changes_schema && !refused {
            self.masking.schema_changed();
        }
        if !refused {
            for name in std::mem::take(&mut verdict.deallocates) {
                self.deallocate(name.as_deref());
            }
            if verdict.changes_portals {
                self.forget_portals();
            }
        }
        self.approval_step(verdict.approval, &text, &params);
        self.push(
            kind,
            text,
            params,
            Some(verdict.record),
            verdict.refusal,
            result,
        );
        self.note_sql_prepares(verdict.sql_prepares);
        if refused {
            Flow::Replace(poison())
        } else {
            Flow::Forward
        }
    }

    /// Notes the SQL `PREPARE`s of the statement just queued.
    fn note_sql_prepares(&mut self, prepares: Vec<(usize, Arc<StatementAnalysis>)>) {
        if prepares.is_empty() {
            return;
        }
        if let Some(Pending::Statement(s)) = self.pending.back_mut() {
            s.sql_prepares = prepares;
        }
    }

    /// Queues what a verdict does to an approval, with this statement's
    /// session, number and recorded text.
    fn approval_step(
        &mut self,
        step: Option<gate::ApprovalStep>,
        text: &str,
        params: &[Option<String>],
    ) {
        match step {
            Some(gate::ApprovalStep::File(mut request)) => {
                request.session = self.session_id;
                request.statement_seq = self.next_seq;
                request.text = text.to_string();
                request.params = params
                    .iter()
                    .map(|p| p.clone().map(|v| self.masking.mask_owned(v)))
                    .collect();
                self.approval_steps.push(gate::ApprovalStep::File(request));
            }
            Some(step) => self.approval_steps.push(step),
            None => {}
        }
    }

    /// Ends a hold: approved, the statement is decided again (and takes its
    /// approval); otherwise it is refused saying why.
    pub(crate) fn resolve_hold(&mut self, held: Held, outcome: gate::HoldOutcome) {
        if outcome != gate::HoldOutcome::Approved {
            self.next_verdict = Some(self.gate.hold_refusal(&held.review, &held.hold.id, outcome));
        }
    }

    /// Where approval requests go, if anywhere.
    pub(crate) fn approvals(&self) -> Option<std::sync::Arc<gatehouse_core::ApprovalDesk>> {
        self.gate.approvals()
    }

    /// Decides and notes a message the client sent (only types for which
    /// [`frontend_inspects`] holds): forward it, or replace it with a poison.
    pub(crate) fn on_frontend(&mut self, ty: u8, body: &[u8]) -> Result<Flow, CodecError> {
        Ok(match ty {
            b'Q' => {
                let q = parse_query(body)?;
                // A simple Query drops the unnamed statement on the server.
                self.forget_unnamed_statement();
                let (verdict, single) = match self.next_verdict.take() {
                    Some(v) => (v, None),
                    None => self.gate.decide_text(q, "simple"),
                };
                let text = self.text_of(q, &verdict);
                let result = ResultSource {
                    copy_out: copy_out(single.as_ref()),
                    ..ResultSource::default()
                };
                self.gated(
                    Kind::Simple,
                    text,
                    Vec::new(),
                    verdict,
                    gate::poison_query,
                    result,
                )
            }
            b'P' => {
                let p = parse_parse(body)?;
                let (verdict, analysis) = self.gate.decide_text(p.query, "extended");
                let text = self.text_of(p.query, &verdict);
                self.last_parse = Some(text.clone());
                // Needing approval is decided at each Execute, with its
                // parameters: the Parse itself runs nothing.
                let needs_approval = verdict.record.decision == "review"
                    && !verdict.review_routes.is_empty()
                    && analysis.is_some()
                    && self.gate.approvals().is_some();
                let refused = verdict.refusal.is_some() && !needs_approval;
                if verdict.changes_schema && !refused {
                    self.masking.schema_changed();
                }
                let parse_id = self.new_id();
                if refused {
                    // The server keeps a named statement's older definition;
                    // the unnamed one it drops.
                    if p.name.is_empty() {
                        self.forget_unnamed_statement();
                    }
                    // Recorded at the Parse's place; the backend's error for the poison is swapped for ours.
                    self.push(
                        Kind::Extended,
                        text,
                        Vec::new(),
                        Some(verdict.record),
                        verdict.refusal,
                        ResultSource::default(),
                    );
                    Flow::Replace(gate::poison_parse(p.name))
                } else {
                    let prepared = Prepared {
                        text,
                        analysis,
                        decision: verdict.record,
                        generation: self.gate.generation(),
                        refused,
                        needs_approval,
                        parse_id,
                        columns: None,
                    };
                    self.define(p.name, names::Defined::Statement(prepared));
                    Flow::Forward
                }
            }
            b'B' => {
                let b = parse_bind(body)?;
                let statement = match self.statement_named(b.statement) {
                    names::Named::Known(p) => p.clone(),
                    names::Named::Ambiguous => Prepared {
                        text: Arc::from(format!("<prepared statement {:?}>", b.statement)),
                        analysis: None,
                        decision: DecisionRecord {
                            decision: "deny".into(),
                            policies: Vec::new(),
                            mode: String::new(),
                            reason: Some(format!(
                                "prepared statement {:?} was redefined in a batch the server has not \
                                 answered yet, so the gateway cannot tell which definition this Bind \
                                 uses; wait for that batch's ReadyForQuery before binding it",
                                b.statement
                            )),
                        },
                        generation: 0,
                        refused: true,
                        needs_approval: false,
                        parse_id: 0,
                        columns: None,
                    },
                    // A statement made by SQL PREPARE, or one the gateway never saw:
                    // generation 0 makes the Execute decide it.
                    names::Named::Unknown => {
                        let analysis = self.gate.sql_prepared(b.statement);
                        let text = match &analysis {
                            Some(a) => self.recorded_text(&a.text),
                            None => {
                                Arc::from(format!("<unknown prepared statement {:?}>", b.statement))
                            }
                        };
                        Prepared {
                            text,
                            analysis,
                            decision: unknown_statement_decision(),
                            generation: 0,
                            refused: false,
                            needs_approval: false,
                            parse_id: 0,
                            columns: None,
                        }
                    }
                };
                // A statement that holds a secret (a dblink connection string,
                // a password) may hold it in a parameter: none is recorded.
                let params = if statement.analysis.as_ref().is_some_and(|a| a.secret) {
                    b.params
                        .iter()
                        .map(|_| Some(WITHHELD_PARAMETER.to_string()))
                        .collect()
                } else {
                    b.params.iter().map(param_text).collect()
                };
                // Only a statement that needs approval pays for hashing its parameters.
                let fingerprint = match (&statement.analysis, statement.needs_approval) {
                    (Some(a), true) => {
                        let raw: Vec<Option<&[u8]>> = b
                            .params
                            .iter()
                            .map(|v| match v {
                                BindValue::Null => None,
                                BindValue::Text(b) | BindValue::Binary(b) => Some(*b),
                            })
                            .collect();
                        Some(self.gate.fingerprint("extended", &a.text, &raw))
                    }
                    _ => None,
                };
                let bind_id = self.new_id();
                let formats = ResultFormats::from_codes(b.result_formats);
                let portal = Portal {
                    statement,
                    params,
                    fingerprint,
                    bind_id,
                    formats,
                    columns: None,
                };
                self.define(b.portal, names::Defined::Portal(portal));
                Flow::Forward
            }
            b'D' => {
                let (parse_id, bind_id) = match parse_describe(body)? {
                    DescribeTarget::Statement(n) => match self.statement_named(n) {
                        names::Named::Known(p) => (p.parse_id, 0),
                        _ => (0, 0),
                    },
                    DescribeTarget::Portal(n) => match self.portal_named(n) {
                        names::Named::Known(p) => (0, p.bind_id),
                        _ => (0, 0),
                    },
                };
                self.pending
                    .push_back(Pending::Describe { parse_id, bind_id });
                Flow::Forward
            }
            b'E' => {
                let name = parse_execute(body)?;
                let portal = match self.portal_named(name) {
                    names::Named::Known(p) => p,
                    // The server may hold a portal of that name the gateway
                    // let go of (names.rs): refused, never forwarded undecided.
                    unknown => {
                        let reason = match unknown {
                            names::Named::Ambiguous => format!(
                                "portal {name:?} was rebound in a batch the server has not answered yet, \
                                 so the gateway cannot tell which statement it runs"
                            ),
                            _ => format!("the gateway knows no portal {name:?} bound in this session"),
                        };
                        let text = Arc::from(format!("<portal {name:?}>"));
                        let verdict = self.gate.refuse(reason);
                        return Ok(self.gated(
                            Kind::Extended,
                            text,
                            Vec::new(),
                            verdict,
                            gate::poison_execute,
                            ResultSource::default(),
                        ));
                    }
                };
                let (st, params) = (portal.statement.clone(), portal.params.clone());
                let fingerprint = portal.fingerprint.clone();
                let result = match &portal.columns {
                    Some(c) => ResultSource {
                        columns: Some(c.clone()),
                        formats: None,
                        parse_id: st.parse_id,
                        bind_id: portal.bind_id,
                        copy_out: copy_out(st.analysis.as_ref()),
                    },
                    None => ResultSource {
                        columns: st.columns.clone(),
                        formats: Some(portal.formats.clone()),
                        parse_id: st.parse_id,
                        bind_id: portal.bind_id,
                        copy_out: copy_out(st.analysis.as_ref()),
                    },
                };
                let text = st.text.clone();
                // Forward only a statement decided under the policy in force and allowed.
                // A refused one is poisoned here too: a statement of the same name made
                // earlier may still exist on the backend and must not run in its place.
                let verdict = match (&st.analysis, fingerprint) {
                    // Needs approval: decided now, with its parameters.
                    (Some(a), Some(fingerprint)) if st.needs_approval => {
                        Some(self.next_verdict.take().unwrap_or_else(|| {
                            self.gate
                                .decide_approvable(std::slice::from_ref(a), "extended", || {
                                    fingerprint
                                })
                                .0
                        }))
                    }
                    // Cannot happen (Parse marks it only with an analysis, Bind then
                    // fingerprints it); refused rather than forwarded undecided.
                    _ if st.needs_approval => Some(self.gate.refuse(format!(
                        "{}: needs approval, but its parameters could not be bound to one",
                        st.text
                    ))),
                    _ if !st.refused && st.generation == self.gate.generation() => None,
                    (Some(a), _) => Some(self.gate.decide(std::slice::from_ref(a), "extended")),
                    (None, _) if st.refused => Some(self.gate.refuse(
                        st.decision.reason.clone().unwrap_or_else(|| "refused at Parse".into()),
                    )),
                    (None, _) => Some(self.gate.refuse(format!(
                        "{}: the gateway did not see this statement prepared, so it cannot decide it",
                        st.text
                    ))),
                };
                if let Some(mut verdict) = verdict {
                    // A SQL PREPARE run this way takes its name when answered, too.
                    if let Some(a) = st.analysis.as_ref().filter(|a| a.prepares.is_some()) {
                        if verdict.sql_prepares.is_empty() {
                            verdict.sql_prepares.push((0, a.clone()));
                        }
                    }
                    return Ok(self.gated(
                        Kind::Extended,
                        text,
                        params,
                        verdict,
                        gate::poison_execute,
                        result,
                    ));
                }
                self.push(
                    Kind::Extended,
                    text,
                    params,
                    Some(st.decision),
                    None,
                    result,
                );
                if let Some(a) = st.analysis.filter(|a| a.prepares.is_some()) {
                    self.note_sql_prepares(vec![(0, a)]);
                }
                Flow::Forward
            }
            b'S' => {
                self.pending.push_back(Pending::Sync);
                Flow::Forward
            }
            b'C' => {
                match parse_close(body)? {
                    CloseTarget::Statement(n) => self.close(n, true),
                    CloseTarget::Portal(n) => self.close(n, false),
                }
                Flow::Forward
            }
            b'F' => {
                let oid = parse_function_call(body)?;
                let analysis = Arc::new(StatementAnalysis::function_call(oid));
                let verdict = self
                    .gate
                    .decide(std::slice::from_ref(&analysis), "function_call");
                let text = Arc::from(analysis.text.as_str());
                self.gated(
                    Kind::FunctionCall,
                    text,
                    Vec::new(),
                    verdict,
                    gate::poison_function_call,
                    ResultSource::default(),
                )
            }
            b'X' => {
                self.terminated = true;
                Flow::Forward
            }
            _ => Flow::Forward,
        })
    }

    /// Notes a message the backend sent (only types for which
    /// [`backend_inspects`], or with masking [`backend_inspects_masked`],
    /// holds): forward it, or replace it (a refusal, a masked message).
    pub(crate) fn on_backend(&mut self, ty: u8, body: &[u8]) -> Result<Flow, CodecError> {
        if self.masking.withholding && ty != b'Z' {
            // After a masking failure nothing reaches the client until ReadyForQuery.
            self.note_backend(ty, body)?;
            return Ok(Flow::Replace(bytes::BytesMut::new()));
        }
        if ty == b'Z' {
            self.masking.withholding = false;
        }
        if self.masking.active {
            if let Some(flow) = self.mask_backend(ty, body)? {
                return Ok(flow);
            }
        }
        let flow = self.note_backend(ty, body)?;
        if ty == b'E' && self.masking.active && matches!(flow, Flow::Forward) {
            return Ok(self.mask_error(body));
        }
        Ok(flow)
    }

    /// The tracker's bookkeeping for a backend message.
    fn note_backend(&mut self, ty: u8, body: &[u8]) -> Result<Flow, CodecError> {
        match ty {
            b'S' => {
                // A pinned setting changed by code the gateway could not see
                // into: what follows can no longer be read as the server reads it.
                let mut c = crate::codec::Cursor::new(body);
                let name = c.cstr("parameter name")?;
                let value = c.cstr("parameter value")?;
                if let Some(reason) = gate::settings::reported_break(name, value) {
                    self.pinned_broken = Some(reason);
                }
            }
            b'C' => {
                let tag = parse_command_tag(body)?;
                if let Some(Pending::Statement(s)) = self.pending.front_mut() {
                    let i = s.answered;
                    s.answered += 1;
                    if tag == "PREPARE" {
                        if let Some((_, done)) = s.sql_prepares.iter().find(|(j, _)| *j == i) {
                            let done = done.clone();
                            // One namespace: a protocol-level statement of that name is gone.
                            if let Some(name) = &done.prepares {
                                self.prepared.remove(names::server_name(name));
                            }
                            self.gate.sql_prepared_done(&done);
                        }
                    }
                }
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
            b'1' | b'2' => self.confirmed(),
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
                    Some(Pending::Statement(s)) if s.refusal.is_some() => {
                        // The backend's error for the poison: the client gets the refusal.
                        let refusal = s.refusal.take();
                        let kind = s.kind;
                        if let Some(r) = refusal {
                            s.error = Some((r.sqlstate.to_string(), r.message));
                            if kind == Kind::Extended {
                                self.complete_front();
                            }
                            return Ok(Flow::Replace(r.error));
                        }
                    }
                    Some(Pending::Statement(s)) => {
                        s.error = Some((f.code, f.message));
                        if s.kind == Kind::Extended {
                            self.complete_front();
                        }
                    }
                    Some(Pending::Sync | Pending::Describe { .. } | Pending::Define(_)) => {
                        // Parse, Bind or Describe failed before any Execute of this batch.
                        match self.pending.front() {
                            Some(Pending::Describe { .. }) => {
                                self.pending.pop_front();
                            }
                            Some(Pending::Define(_)) => {
                                if let Some(Pending::Define(d)) = self.pending.pop_front() {
                                    self.not_defined(d);
                                }
                            }
                            _ => {}
                        }
                        let text = self
                            .last_parse
                            .clone()
                            .unwrap_or_else(|| Arc::from("<extended protocol message>"));
                        self.push_undecided(text);
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
                // Executes and Describes still queued before the Sync were skipped by the backend.
                loop {
                    match self.pending.front() {
                        Some(Pending::Statement(s)) if s.kind == Kind::Extended => {}
                        Some(Pending::Describe { .. } | Pending::Define(_)) => {}
                        _ => break,
                    }
                    if let Some(Pending::Define(d)) = self.pending.pop_front() {
                        self.not_defined(d);
                    }
                }
                // Idle: the transaction ended, and its portals with it.
                if body.first() == Some(&b'I') {
                    self.forget_portals();
                }
                match self.pending.front() {
                    Some(Pending::Statement(_)) => self.complete_front(),
                    Some(Pending::Sync) => {
                        self.pending.pop_front();
                    }
                    Some(Pending::Describe { .. } | Pending::Define(_)) | None => {}
                }
            }
            _ => {}
        }
        Ok(Flow::Forward)
    }

    fn complete_front(&mut self) {
        if let Some(Pending::Statement(s)) = self.pending.pop_front() {
            self.finish(s);
        }
    }

    fn finish(&mut self, mut s: InFlight) {
        let outcome = match s.error.take() {
            Some((sqlstate, message)) => ActionOutcome::Error {
                code: sqlstate,
                message,
            },
            None => ActionOutcome::Ok {
                summary: std::mem::take(&mut s.tags),
                count: s.rows,
            },
        };
        let r = self.record(s, outcome);
        self.done.push(r);
    }

    fn new_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// The record of a statement; what it keeps of the statement (text,
    /// parameters, error message) is masked, whatever the caller may see.
    fn record(&mut self, s: InFlight, outcome: ActionOutcome) -> ActionRecord {
        let m = &mut self.masking;
        let outcome = match outcome {
            ActionOutcome::Error {
                code: sqlstate,
                message,
            } => ActionOutcome::Error {
                code: sqlstate,
                message: m.mask_error_message(message),
            },
            o => o,
        };
        ActionRecord {
            session_id: self.session_id,
            seq: s.seq,
            protocol: s.kind.as_str().to_string(),
            // Masked when it was taken from the client (`recorded_text`).
            text: s.text.to_string(),
            params: s
                .params
                .into_iter()
                .map(|p| p.map(|v| m.mask_owned(v)))
                .collect(),
            started_at: s.started_at,
            duration_us: s.t0.elapsed().as_micros() as u64,
            outcome,
            decision: s.decision,
            masking: m.summary(&s.tally),
            exchange: None,
        }
    }

    /// Statements still waiting for an answer when the session ends.
    pub(crate) fn drain_incomplete(&mut self) {
        while let Some(p) = self.pending.pop_front() {
            if let Pending::Statement(s) = p {
                let r = self.record(s, ActionOutcome::Incomplete);
                self.done.push(r);
            }
        }
    }
}

/// Placeholder for a statement not yet decided (its Execute decides it).
fn unknown_statement_decision() -> DecisionRecord {
    DecisionRecord {
        decision: "undecided".into(),
        policies: Vec::new(),
        mode: String::new(),
        reason: None,
    }
}

impl Tracker {
    /// The text a record keeps of a statement: masked (once, when it arrives:
    /// a prepared statement's executions share it) and cut at [`MAX_TEXT`].
    fn recorded_text(&mut self, sql: &str) -> Arc<str> {
        truncated(&self.masking.mask_for_record(sql))
    }

    /// The text a record keeps of a decided statement: the analysis's
    /// redacted form when it holds a secret, else [`Self::recorded_text`].
    fn text_of(&mut self, sql: &str, verdict: &gate::Verdict) -> Arc<str> {
        match &verdict.recorded {
            Some(redacted) => truncated(&self.masking.mask_for_record(redacted)),
            None => self.recorded_text(sql),
        }
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

mod names;
mod results;
#[cfg(test)]
mod tests;
