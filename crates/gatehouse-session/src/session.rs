//! An open session: the adapter's only way to report what its caller does.
//!
//! The adapter numbers each action with [`Session::next_seq`], notes its
//! decision (and any approval filed or taken) in a [`WriteAhead`], makes
//! that durable with [`Session::commit`] before forwarding anything of it,
//! hands the finished action to [`Session::finished`], and ends with
//! [`Session::close`].

use crate::occupancy::SessionSlot;
use crate::SessionError;
use gatehouse_core::{
    ActionDecided, ActionRecord, ActionToApprove, ApprovalDesk, ApprovalId, ApprovalRequest,
    ApprovalState, AuditEvent, Consulted, DecisionRecord, Identity, PendingAppend, Protocol,
    RecorderClosed, SessionEnd, SessionEndReason, SessionId, SessionRecorder, SessionStart,
    StartError, Timestamp,
};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// What the adapter knows of a session besides who and where.
#[derive(Clone, Debug, Default)]
pub struct SessionDetails {
    /// The user name the client sent (informational; the credential decides).
    pub client_user: String,
    /// The client's own name for itself (`application_name`, a User-Agent).
    pub application_name: Option<String>,
}

/// Bytes relayed each way, for the session's end record.
#[derive(Debug, Default)]
pub struct Counters {
    /// Bytes received from the client.
    pub from_client: AtomicU64,
    /// Bytes sent to the client.
    pub to_client: AtomicU64,
}

impl Counters {
    /// Counts `n` bytes read from the client.
    pub fn read(&self, n: usize) {
        self.from_client.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Counts `n` bytes written to the client.
    pub fn written(&self, n: usize) {
        self.to_client.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// What an action does to an approval; made durable with its decision.
#[derive(Clone, Debug)]
pub enum ApprovalStep {
    /// A new request.
    File(Box<ApprovalRequest>),
    /// The action runs on this approval, which is now used.
    Use(ApprovalId),
}

/// The decisions (and approval steps) of one read of the caller's input:
/// durable, by [`Session::commit`], before any of it is forwarded. Made by
/// [`Session::write_ahead`] and reused from read to read.
#[derive(Debug)]
pub struct WriteAhead {
    session: SessionId,
    subject: Arc<str>,
    connection: Arc<str>,
    events: Vec<AuditEvent>,
    approvals: Vec<ApprovalStep>,
    /// Some action in the batch may change something (see
    /// [`DecidedAction::reads_only`]).
    changes: bool,
}

impl WriteAhead {
    /// An empty batch for the session `session` of `subject` on
    /// `connection` (adapters get theirs from [`Session::write_ahead`];
    /// this is for tests of an adapter's bookkeeping).
    pub fn new(session: SessionId, subject: &str, connection: &str) -> Self {
        Self {
            session,
            subject: Arc::from(subject),
            connection: Arc::from(connection),
            events: Vec::new(),
            approvals: Vec::new(),
            changes: false,
        }
    }

    /// Nothing to make durable.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.approvals.is_empty()
    }

    /// Empties the batch, handing back what it held: the decisions and the
    /// approval steps ([`Session::commit`] makes them durable).
    pub fn drain(&mut self) -> (Vec<AuditEvent>, Vec<ApprovalStep>) {
        self.changes = false;
        (
            std::mem::take(&mut self.events),
            std::mem::take(&mut self.approvals),
        )
    }

    /// Notes a decided action.
    pub fn decided(&mut self, d: DecidedAction<'_>) {
        self.changes |= !d.reads_only;
        self.events.push(AuditEvent::statement(&ActionDecided {
            session: self.session,
            seq: d.seq,
            identity: &self.subject,
            connection: &self.connection,
            protocol: d.flavour,
            text: d.text,
            parameters: d.parameters,
            decision: d.decision,
        }));
    }

    /// Notes a new approval request, prepared by [`Session::consult`] (the
    /// adapter fills in the action's number, text and parameters where the
    /// consult could not know them); it is filed under this batch's session.
    pub fn file(&mut self, mut request: Box<ApprovalRequest>) {
        request.session = self.session;
        self.approvals.push(ApprovalStep::File(request));
    }

    /// Notes that an action runs on approval `id` (now used).
    pub fn take(&mut self, id: ApprovalId) {
        self.approvals.push(ApprovalStep::Use(id));
    }
}

/// One decided action, as the evidence log keeps it before it runs.
#[derive(Clone, Copy, Debug)]
pub struct DecidedAction<'a> {
    /// Its number in the session ([`Session::next_seq`]).
    pub seq: u64,
    /// How it was sent: `simple`, `extended`, `function_call`; `http`; `mcp`.
    pub flavour: &'a str,
    /// Its text as records keep it (masked).
    pub text: &'a str,
    /// How many parameters it carries.
    pub parameters: usize,
    /// The decision.
    pub decision: &'a DecisionRecord,
    /// Forwarding it cannot change anything on the backend: it only reads
    /// (as the adapter's analysis decides, conservatively), or it is refused
    /// and nothing of it runs. Such an action may run while its event is
    /// written ([`Session::commit_overlapping`]).
    pub reads_only: bool,
}

/// How far [`Session::commit_overlapping`] made a batch durable.
#[must_use = "a batch of reads is durable only once its pending append says so"]
#[derive(Debug)]
pub enum Committed {
    /// Durable: forward it.
    Durable,
    /// Every action in it only reads, and its events are queued: forward
    /// it now, and hold back every answer to it (and whatever the backend
    /// sends after it) until this says the events are durable.
    Reads(PendingAppend),
}

/// An open session; cheap to clone (the relay's two directions, an HTTP
/// connection's requests share it).
#[derive(Clone)]
pub struct Session {
    inner: Arc<Shared>,
}

struct Shared {
    id: SessionId,
    identity: Identity,
    /// The subject and connection every decided action's event names,
    /// shared by the session's write-ahead batches (no copy per batch).
    subject: Arc<str>,
    connection: Arc<str>,
    protocol: Protocol,
    recorder: SessionRecorder,
    approvals: Option<Arc<ApprovalDesk>>,
    counters: Counters,
    seq: AtomicU64,
    closed: AtomicBool,
    /// Counts the session against its identity's limit while it lasts.
    _slot: SessionSlot,
}

impl Session {
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn open(
        recorder: SessionRecorder,
        approvals: Option<Arc<ApprovalDesk>>,
        identity: Identity,
        connection: String,
        protocol: Protocol,
        peer: SocketAddr,
        details: SessionDetails,
        slot: SessionSlot,
    ) -> Result<Self, StartError> {
        let start = SessionStart {
            id: SessionId::new(),
            identity,
            connection,
            protocol: protocol.as_str().to_string(),
            client_addr: peer.to_string(),
            client_user: details.client_user,
            application_name: details.application_name,
            started_at: Timestamp::now(),
        };
        recorder.session_started(&start).await?;
        tracing::info!(
            session = %start.id, identity = %start.identity.subject, connection = %start.connection,
            client = %peer, protocol = protocol.as_str(), "session started"
        );
        Ok(Self {
            inner: Arc::new(Shared {
                id: start.id,
                subject: Arc::from(start.identity.subject.as_str()),
                identity: start.identity,
                connection: Arc::from(start.connection),
                protocol,
                recorder,
                approvals,
                counters: Counters::default(),
                seq: AtomicU64::new(0),
                closed: AtomicBool::new(false),
                _slot: slot,
            }),
        })
    }

    /// The session's id.
    pub fn id(&self) -> SessionId {
        self.inner.id
    }

    /// Who the caller is.
    pub fn identity(&self) -> &Identity {
        &self.inner.identity
    }

    /// The connection it is on.
    pub fn connection(&self) -> &str {
        &self.inner.connection
    }

    /// The protocol it speaks.
    pub fn protocol(&self) -> Protocol {
        self.inner.protocol
    }

    /// Bytes relayed each way.
    pub fn counters(&self) -> &Counters {
        &self.inner.counters
    }

    /// The next action's number, from 1.
    pub fn next_seq(&self) -> u64 {
        self.inner.seq.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// An empty batch for this session's decisions.
    pub fn write_ahead(&self) -> WriteAhead {
        WriteAhead {
            session: self.inner.id,
            subject: self.inner.subject.clone(),
            connection: self.inner.connection.clone(),
            events: Vec::new(),
            approvals: Vec::new(),
            changes: false,
        }
    }

    /// Like [`Session::commit`], except for a batch of actions that only
    /// read (and file or use no approval): its events are queued, and the
    /// adapter may forward it at once, holding every answer back until the
    /// returned append is durable. Such an action has no effect to lose; its
    /// result must never reach the caller unrecorded. An evidence log set
    /// to write reads ahead too answers once they are durable.
    pub async fn commit_overlapping(&self, w: &mut WriteAhead) -> Result<Committed, SessionError> {
        debug_assert_eq!(
            w.session, self.inner.id,
            "a write-ahead batch of another session"
        );
        if w.changes || !w.approvals.is_empty() {
            self.commit(w).await?;
            return Ok(Committed::Durable);
        }
        let (events, _) = w.drain();
        Ok(Committed::Reads(
            self.inner.recorder.audit_queued(events).await?,
        ))
    }

    /// Makes what `w` holds durable (approvals used, decisions in the
    /// evidence log, then requests filed), emptying it. Until this returns
    /// `Ok`, nothing of those actions may be forwarded.
    pub async fn commit(&self, w: &mut WriteAhead) -> Result<(), SessionError> {
        // A batch of another session would put its decisions under the wrong id.
        debug_assert_eq!(
            w.session, self.inner.id,
            "a write-ahead batch of another session"
        );
        let (events, steps) = w.drain();
        // Steps come only from a session with a desk (consult says NoRoute without one).
        let desk = self.inner.approvals.as_ref().filter(|_| !steps.is_empty());
        // Approvals are used first, each by a conditional update in the
        // store: one taken by another session meanwhile (on another node
        // sharing the store) fails the commit before anything is logged as
        // running on it.
        if let Some(desk) = desk {
            for step in &steps {
                if let ApprovalStep::Use(id) = step {
                    desk.mark_used(id, Timestamp::now()).await?;
                }
            }
        }
        if !events.is_empty() {
            self.inner.recorder.audit(events).await?;
        }
        if let Some(desk) = desk {
            for step in steps {
                if let ApprovalStep::File(request) = step {
                    desk.submit(*request).await?;
                }
            }
        }
        Ok(())
    }

    /// Whether actions that need approval can be filed from this session.
    pub fn takes_approvals(&self) -> bool {
        self.inner.approvals.is_some()
    }

    /// Looks up an action that needs approval: an approval covering it
    /// (taken), its pending request, or a new request to file. `NoRoute`
    /// when the gateway has no approval desk or none of the routes.
    pub fn consult(&self, asked: &ActionToApprove<'_>) -> Consulted {
        match &self.inner.approvals {
            Some(desk) => desk.consult(asked, Timestamp::now()),
            None => Consulted::NoRoute,
        }
    }

    /// Takes the approval covering `fingerprint`, if one is valid now.
    pub fn take_approved(&self, fingerprint: &str) -> Option<ApprovalId> {
        let desk = self.inner.approvals.as_ref()?;
        desk.take_approved(fingerprint, Timestamp::now())
    }

    /// Takes the approval covering `fingerprint`, if one is valid now, with
    /// the rows it allows (a write approved over its row cap).
    pub fn take_approved_rows(&self, fingerprint: &str) -> Option<(ApprovalId, Option<u64>)> {
        let desk = self.inner.approvals.as_ref()?;
        desk.take_approved_rows(fingerprint, Timestamp::now())
    }

    /// Waits up to `timeout` for request `id` to be decided (hold mode): its
    /// state once decided, `None` while still pending then.
    pub async fn await_decision(
        &self,
        id: &ApprovalId,
        timeout: std::time::Duration,
    ) -> Result<Option<ApprovalState>, SessionError> {
        let Some(desk) = &self.inner.approvals else {
            return Ok(None);
        };
        Ok(desk.await_decision(id, timeout).await?)
    }

    /// Records a finished action (queued to the recorder, which writes its
    /// result to the evidence log after it).
    pub async fn finished(&self, record: ActionRecord) -> Result<(), RecorderClosed> {
        self.inner.recorder.statement(record).await
    }

    /// Ends the session (once; later calls do nothing).
    pub async fn close(&self, reason: SessionEndReason, detail: Option<String>) {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let c = &self.inner.counters;
        let end = SessionEnd {
            id: self.inner.id,
            ended_at: Timestamp::now(),
            bytes_from_client: c.from_client.load(Ordering::Relaxed),
            bytes_to_client: c.to_client.load(Ordering::Relaxed),
            reason,
            detail,
        };
        tracing::info!(session = %self.inner.id, reason = reason.as_str(), "session ended");
        if self.inner.recorder.session_ended(end).await.is_err() {
            tracing::error!(session = %self.inner.id, "could not record a session end: the recorder stopped");
        }
    }
}
