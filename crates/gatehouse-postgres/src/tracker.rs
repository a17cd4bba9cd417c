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
use crate::codec::msg::{backend as be, frontend as fe};
use crate::codec::CodecError;
use crate::gate::{self, Flavour, Gate, Prepared};
use crate::mask::{Column, ResultFormats, ResultPlan, SessionMasking};
use crate::refusals::StatementRefusal;
use gatehouse_core::{
    ActionOutcome, ActionRecord, Decided, DecidedIn, DecisionRecord, SessionId, Timestamp,
};
use gatehouse_mask::MaskTally;
use gatehouse_session::{ApprovalStep, DecidedAction, WriteAhead};
use gatehouse_sql::StatementAnalysis;
pub(crate) use inspects::{backend_inspects, backend_inspects_masked, frontend_inspects};
use pending::{copy_out, InFlight, Pending, Portal, ResultSource};
use record::{param_text, unknown_statement_decision};
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

/// Why the relay must stop before a message and act before scanning it again.
#[derive(Debug)]
pub(crate) enum Pause {
    /// A statement held for approval (hold mode): the relay waits for the
    /// decision, then [`Tracker::resolve_hold`] and the statement is scanned again.
    Approval(Box<Held>),
    /// A result's masking plan needs table names from the catalog.
    CatalogLookup,
    /// A statement under a row cap runs: the client's next messages wait
    /// until the gateway has finished it (`row_cap.rs`).
    RowCap,
}

/// What the backend's messages of one read did, for the relay to carry out
/// once the read is scanned.
#[derive(Debug, Default)]
pub(crate) struct Answered {
    /// Statements completed, to record.
    pub(crate) finished: Vec<ActionRecord>,
    /// The backend reported that a pinned setting changed (why): code the
    /// gateway could not see into did it, so nothing of this read, or after
    /// it, is relayed.
    pub(crate) setting_changed: Option<String>,
    /// Columns a detector found sensitive (protecting already), to log and store.
    pub(crate) found: Vec<gatehouse_core::SensitiveColumn>,
    /// A capped statement is settled: write these (possibly no) bytes of the
    /// gateway's to the backend, then let the client's messages go on.
    pub(crate) resume: Option<bytes::BytesMut>,
    /// An approval request for a write over its row cap: durable before
    /// anything more reaches the client or the backend.
    pub(crate) file: Option<Box<gatehouse_core::ApprovalRequest>>,
}

/// What to do with a message the tracker saw.
pub(crate) type Flow = crate::codec::Flow<Pause>;

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
    /// The verdict for the next Query, set when a hold ended without approval.
    next_verdict: Option<gate::Verdict>,
    /// The client sent Terminate.
    pub(crate) terminated: bool,
    /// The transaction state of the latest ReadyForQuery.
    tx_status: u8,
    /// The client's messages wait for a capped statement (`row_cap.rs`).
    barrier: bool,
    /// A capped Query waits until every earlier statement is answered.
    drain_wait: bool,
    /// Extended-protocol messages went out since the latest ReadyForQuery
    /// (until one comes, the transaction state is not known).
    unsynced: bool,
}

/// A statement waiting in its session for approval.
#[derive(Debug)]
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
            next_verdict: None,
            terminated: false,
            tx_status: b'I',
            barrier: false,
            drain_wait: false,
            unsynced: false,
        }
    }

    /// Queues a decided statement, its decision noted in `w` (write-ahead);
    /// `reads_only`: running it (or its poison, when refused) changes nothing.
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        w: &mut WriteAhead,
        kind: Flavour,
        text: Arc<str>,
        params: Vec<Option<String>>,
        decision: DecisionRecord,
        refusal: Option<StatementRefusal>,
        result: ResultSource,
        reads_only: bool,
    ) {
        w.decided(DecidedAction {
            seq: self.next_seq,
            flavour: kind.as_str(),
            text: &text,
            parameters: params.len(),
            decision: &decision,
            reads_only: reads_only || refusal.is_some(),
        });
        self.queue(kind, text, params, Some(decision), refusal, result);
    }

    /// Queues a statement to pair with its answer.
    fn queue(
        &mut self,
        kind: Flavour,
        text: Arc<str>,
        params: Vec<Option<String>>,
        decision: Option<DecisionRecord>,
        refusal: Option<StatementRefusal>,
        result: ResultSource,
    ) {
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
            decision,
            refusal,
            result,
            plan: None,
            copy_plan: None,
            tally: MaskTally::default(),
            answered: 0,
            sql_prepares: Vec::new(),
            cap: None,
        }));
    }

    /// Queues an extended-protocol message no decision applies to (an
    /// unknown portal, a failed Parse or Bind), so its outcome is recorded.
    fn push_undecided(&mut self, text: Arc<str>) {
        self.queue(
            Flavour::Extended,
            text,
            Vec::new(),
            None,
            None,
            ResultSource::default(),
        );
    }

    /// Queues a statement with its verdict; a refused one is replaced by
    /// `poison`, a held one waits (recorded once decided; now only its
    /// request is filed). `reads_only`: its analysis says it only reads.
    #[allow(clippy::too_many_arguments)]
    fn gated(
        &mut self,
        w: &mut WriteAhead,
        kind: Flavour,
        text: Arc<str>,
        params: Vec<Option<String>>,
        mut verdict: gate::Verdict,
        poison: fn() -> bytes::BytesMut,
        result: ResultSource,
        reads_only: bool,
    ) -> Flow {
        if let Some(hold) = verdict.hold.take() {
            self.approval_step(w, verdict.approval.take(), &text, &params);
            return Flow::Pause(Pause::Approval(Box::new(Held {
                hold,
                review: verdict,
            })));
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
        self.approval_step(w, verdict.approval, &text, &params);
        self.push(
            w,
            kind,
            text,
            params,
            verdict.record,
            verdict.refusal,
            result,
            reads_only,
        );
        self.note_sql_prepares(verdict.sql_prepares);
        if refused {
            Flow::Replace(poison())
        } else {
            Flow::Forward
        }
    }

    /// [`gated`](Self::gated) for an Execute: its poison closes the poison
    /// portal first, and that Close's answer is the gateway's.
    fn gated_execute(
        &mut self,
        w: &mut WriteAhead,
        text: Arc<str>,
        params: Vec<Option<String>>,
        verdict: gate::Verdict,
        result: ResultSource,
        reads_only: bool,
    ) -> Flow {
        let flow = self.gated(
            w,
            Flavour::Extended,
            text,
            params,
            verdict,
            gate::poison_execute,
            result,
            reads_only,
        );
        if matches!(flow, Flow::Replace(_)) {
            if let Some(refused) = self.pending.pop_back() {
                self.pending.push_back(Pending::Added(None));
                self.pending.push_back(refused);
            }
        }
        flow
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
        w: &mut WriteAhead,
        step: Option<ApprovalStep>,
        text: &str,
        params: &[Option<String>],
    ) {
        match step {
            Some(ApprovalStep::File(mut request)) => {
                request.statement_seq = self.next_seq;
                request.text = text.to_string();
                request.params = params
                    .iter()
                    .map(|p| p.clone().map(|v| self.masking.mask_owned(v)))
                    .collect();
                w.file(request);
            }
            Some(ApprovalStep::Use(id)) => w.take(id),
            None => {}
        }
    }

    /// Ends a hold: approved, the statement is decided again (and takes its
    /// approval); otherwise it is refused saying why.
    pub(crate) fn resolve_hold(&mut self, held: &Held, outcome: gate::HoldOutcome) {
        if outcome != gate::HoldOutcome::Approved {
            self.next_verdict = Some(self.gate.hold_refusal(&held.review, &held.hold.id, outcome));
        }
    }

    /// Decides and notes a message the client sent (only types for which
    /// [`frontend_inspects`] holds): forward it, or replace it with a poison.
    /// Decisions (and approval steps) are noted in `w`, to be made durable
    /// before anything of the message is forwarded.
    pub(crate) fn on_frontend(
        &mut self,
        ty: u8,
        body: &[u8],
        w: &mut WriteAhead,
    ) -> Result<Flow, CodecError> {
        if self.barrier() {
            return Ok(Flow::Pause(Pause::RowCap));
        }
        if matches!(
            ty,
            fe::PARSE | fe::BIND | fe::DESCRIBE | fe::EXECUTE | fe::CLOSE
        ) {
            self.unsynced = true;
        }
        let flow = match ty {
            fe::QUERY => self.on_query(body, w),
            fe::PARSE => self.on_parse(body, w),
            fe::BIND => self.on_bind(body, w),
            fe::DESCRIBE => self.on_describe(body),
            fe::EXECUTE => self.on_execute(body, w),
            fe::SYNC => self.on_sync(),
            fe::CLOSE => self.on_close(body),
            fe::FUNCTION_CALL => self.on_function_call(body, w),
            fe::TERMINATE => self.on_terminate(),
            _ => Ok(Flow::Forward),
        };
        // A hold's outcome is for the message scanned again after it, only.
        self.next_verdict = None;
        flow
    }

    /// Notes a message the backend sent (only types for which
    /// [`backend_inspects`], or with masking [`backend_inspects_masked`],
    /// holds): forward it, or replace it (a refusal, a masked message).
    /// What it does (statements completed, a pinned setting changed) goes
    /// to `answered`.
    pub(crate) fn on_backend(
        &mut self,
        ty: u8,
        body: &[u8],
        answered: &mut Answered,
    ) -> Result<Flow, CodecError> {
        // Every answer to a query of the gateway's own is the gateway's.
        if let Some(Pending::AddedQuery) = self.pending.front() {
            if ty == be::READY_FOR_QUERY {
                self.pending.pop_front();
                if let Some(&status) = body.first() {
                    self.tx_status = status;
                }
            }
            return Ok(Flow::Replace(bytes::BytesMut::new()));
        }
        if self.masking.withholding && ty != be::READY_FOR_QUERY {
            // After a masking failure nothing reaches the client until ReadyForQuery.
            self.note_backend(ty, body, answered)?;
            return Ok(Flow::Replace(bytes::BytesMut::new()));
        }
        if ty == be::READY_FOR_QUERY {
            self.masking.withholding = false;
        }
        if self.masking.active {
            let masked = self.mask_backend(ty, body)?;
            answered.found.append(&mut self.masking.take_found());
            if let Some(flow) = masked {
                return Ok(flow);
            }
        }
        let flow = self.note_backend(ty, body, answered)?;
        if ty == be::ERROR_RESPONSE && self.masking.active && matches!(flow, Flow::Forward) {
            return Ok(self.mask_error(body));
        }
        Ok(flow)
    }

    fn new_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// The tracker's bookkeeping for a backend message.
    fn note_backend(
        &mut self,
        ty: u8,
        body: &[u8],
        answered: &mut Answered,
    ) -> Result<Flow, CodecError> {
        let finished = &mut answered.finished;
        match ty {
            be::PARAMETER_STATUS => {
                if let Some(reason) = self.on_parameter_status(body)? {
                    answered.setting_changed = Some(reason);
                }
                Ok(Flow::Forward)
            }
            be::COMMAND_COMPLETE => {
                // Only a capped statement's tag is read here (most are not).
                if self.front_capped() {
                    let tag = parse_command_tag(body)?;
                    let (resume, file) = (&mut answered.resume, &mut answered.file);
                    if let Some(flow) = self.capped_tag(tag, rows_from_tag(tag), resume, file) {
                        return Ok(flow);
                    }
                }
                self.on_command_complete(body, finished)
            }
            be::PARSE_COMPLETE | be::BIND_COMPLETE | be::CLOSE_COMPLETE => {
                if let Some(flow) = self.added_answered() {
                    return Ok(flow);
                }
                if ty == be::CLOSE_COMPLETE {
                    if let Some(Pending::Close) = self.pending.front() {
                        self.pending.pop_front();
                    }
                } else {
                    self.confirmed();
                }
                Ok(Flow::Forward)
            }
            be::EMPTY_QUERY_RESPONSE | be::PORTAL_SUSPENDED => {
                self.on_empty_or_suspended(ty, finished)
            }
            be::ERROR_RESPONSE => {
                self.capped_batch_failed(&mut answered.resume);
                self.on_error(body, finished)
            }
            be::READY_FOR_QUERY => {
                if let Some(&status) = body.first() {
                    self.tx_status = status;
                }
                if let Some(flow) = self.capped_ready(&mut answered.resume) {
                    return Ok(flow);
                }
                let flow = self.on_ready_for_query(body, finished);
                // Extended messages still unanswered belong to a later batch.
                self.unsynced = self.unsynced
                    && self.pending.iter().any(|p| match p {
                        Pending::Statement(s) => s.kind == Flavour::Extended,
                        Pending::Sync | Pending::AddedQuery => false,
                        _ => true,
                    });
                self.drained(&mut answered.resume);
                flow
            }
            _ => Ok(Flow::Forward),
        }
    }
}

mod backend;
mod frontend;
mod inspects;
mod kept_back;
mod names;
mod pending;
mod record;
mod results;
mod row_cap;
#[cfg(test)]
mod tests;
