//! The session recorder: the single writer of session and statement records.
//!
//! Session starts are written synchronously (a session that cannot be recorded
//! does not start). Statements and session ends go through a bounded channel
//! to one writer task that commits them in batches (group commit); a full
//! channel slows the sessions down instead of growing memory.
//!
//! The recorder also carries the session's [`AuditTrail`]: events the data
//! path must have durable before it acts go through [`SessionRecorder::audit`];
//! statement results and session ends follow their records into the log.

use crate::{
    ActionRecord, AuditError, AuditEvent, AuditTrail, PendingAppend, SessionEnd, SessionStart,
    Store, StoreError,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

// Statements are nearly every event: boxing them would cost an allocation each.
#[allow(clippy::large_enum_variant)]
enum RecordEvent {
    Statement(ActionRecord),
    End(SessionEnd),
}

/// The writer task has stopped; nothing more can be recorded.
#[derive(Debug, thiserror::Error)]
#[error("session recorder stopped")]
pub struct RecorderClosed;

/// A handle to the recorder; cheap to clone, one per session.
#[derive(Clone)]
pub struct SessionRecorder {
    tx: mpsc::Sender<RecordEvent>,
    store: Arc<dyn Store>,
    audit: Arc<dyn AuditTrail>,
    stopping: Arc<AtomicBool>,
}

/// Tells the recorder's writer the gateway is stopping: a batch its stores
/// keep refusing is given up 10 s later instead of tried until written, so
/// a broken disk cannot keep the gateway from exiting. Holds no handle: the
/// writer still ends once every [`SessionRecorder`] is dropped.
#[derive(Clone)]
pub struct RecorderStop(Arc<AtomicBool>);

impl RecorderStop {
    /// The gateway is stopping.
    pub fn stopping(&self) {
        self.0.store(true, Ordering::Release);
    }
}

/// A session start that could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The session store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The evidence log failed.
    #[error(transparent)]
    Audit(#[from] AuditError),
}

/// Largest batch committed in one transaction.
const BATCH: usize = 1024;
/// How long a batch waits for company once its first record arrived. Records
/// are not write-ahead (the evidence log holds every decided statement
/// before it runs), so a short wait costs nothing but lets one commit carry
/// many statements: without it a single busy session paid one SQLite
/// transaction per statement, a third of the gateway's CPU under pgbench.
const LINGER: std::time::Duration = std::time::Duration::from_millis(20);

impl SessionRecorder {
    /// Starts the writer task over `store`, with room for `capacity` queued records.
    /// The task ends once every handle is dropped and the queue is drained.
    pub fn spawn(
        store: Arc<dyn Store>,
        audit: Arc<dyn AuditTrail>,
        capacity: usize,
    ) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let stopping = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(write_batches(
            store.clone(),
            audit.clone(),
            rx,
            stopping.clone(),
        ));
        let recorder = Self {
            tx,
            store,
            audit,
            stopping,
        };
        (recorder, task)
    }

    /// What tells the writer the gateway is stopping.
    pub fn stop_signal(&self) -> RecorderStop {
        RecorderStop(self.stopping.clone())
    }

    /// Records a session start, in the evidence log first, before the
    /// session may proceed.
    pub async fn session_started(&self, start: &SessionStart) -> Result<(), StartError> {
        self.audit
            .append(vec![AuditEvent::session_start(start)])
            .await?;
        Ok(self.store.record_session_start(start).await?)
    }

    /// Appends events to the evidence log; returns once they are durable.
    pub async fn audit(&self, events: Vec<AuditEvent>) -> Result<(), AuditError> {
        self.audit.append(events).await
    }

    /// Queues events for the evidence log, in order with every other
    /// append; what it returns tells when they are durable.
    pub async fn audit_queued(&self, events: Vec<AuditEvent>) -> Result<PendingAppend, AuditError> {
        self.audit.enqueue(events).await
    }

    /// Queues a finished statement.
    pub async fn statement(&self, record: ActionRecord) -> Result<(), RecorderClosed> {
        self.tx
            .send(RecordEvent::Statement(record))
            .await
            .map_err(|_| RecorderClosed)
    }

    /// Queues a session end.
    pub async fn session_ended(&self, end: SessionEnd) -> Result<(), RecorderClosed> {
        self.tx
            .send(RecordEvent::End(end))
            .await
            .map_err(|_| RecorderClosed)
    }
}

async fn write_batches(
    store: Arc<dyn Store>,
    audit: Arc<dyn AuditTrail>,
    mut rx: mpsc::Receiver<RecordEvent>,
    stopping: Arc<AtomicBool>,
) {
    // Once the gateway stops, one deadline for every batch still failing.
    let mut give_up_at = None;
    let mut events = Vec::with_capacity(BATCH);
    let mut statements = Vec::with_capacity(BATCH);
    let mut ends = Vec::new();
    while rx.recv_many(&mut events, BATCH).await > 0 {
        let deadline = tokio::time::Instant::now() + LINGER;
        while events.len() < BATCH {
            let room = BATCH - events.len();
            // recv_many is cancel-safe: a timeout loses nothing.
            match tokio::time::timeout_at(deadline, rx.recv_many(&mut events, room)).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        for e in events.drain(..) {
            match e {
                RecordEvent::Statement(s) => statements.push(s),
                RecordEvent::End(e) => ends.push(e),
            }
        }
        let stop = Stopping {
            signal: &stopping,
            rx: &rx,
            give_up_at: &mut give_up_at,
        };
        write_until_done(store.as_ref(), audit.as_ref(), &statements, &ends, stop).await;
        statements.clear();
        ends.clear();
    }
}

/// First wait after a failed write; doubled up to [`RETRY_MAX`].
const RETRY_FIRST: std::time::Duration = std::time::Duration::from_millis(100);
/// Longest wait between two tries.
const RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(5);
/// How long failing batches are still tried once the gateway is stopping: a
/// store that stays broken must not keep it from exiting.
const RETRY_AT_SHUTDOWN: std::time::Duration = std::time::Duration::from_secs(10);

/// Whether the gateway is stopping, and when the writer gives up then.
struct Stopping<'a> {
    signal: &'a AtomicBool,
    rx: &'a mpsc::Receiver<RecordEvent>,
    give_up_at: &'a mut Option<tokio::time::Instant>,
}

impl Stopping<'_> {
    /// Whether to give up on a failing batch now.
    fn given_up(&mut self) -> bool {
        if !self.signal.load(Ordering::Acquire) && !self.rx.is_closed() {
            return false;
        }
        let now = tokio::time::Instant::now();
        now >= *self.give_up_at.get_or_insert(now + RETRY_AT_SHUTDOWN)
    }
}

/// Writes a batch's results and session ends to the evidence log and its
/// records to the store, trying each again until it is written (a full disk
/// that frees up loses nothing). Meanwhile no further batch is taken: the
/// bounded queue fills and sessions wait for it (backpressure), rather than
/// results piling up in memory or being dropped. At shutdown a store that
/// stays broken is given up after a bound, with an error naming what is lost.
async fn write_until_done(
    store: &dyn Store,
    audit: &dyn AuditTrail,
    statements: &[ActionRecord],
    ends: &[SessionEnd],
    mut stop: Stopping<'_>,
) {
    let mut logged = false;
    let mut stored = false;
    let mut wait = RETRY_FIRST;
    loop {
        if !logged {
            // Built again on each try: a failed append consumed its events.
            let events: Vec<AuditEvent> = statements
                .iter()
                .map(AuditEvent::statement_result)
                .chain(ends.iter().map(AuditEvent::session_end))
                .collect();
            match audit.record(events).await {
                Ok(()) => logged = true,
                Err(e) => tracing::error!(
                    error = %e, retry_in = ?wait,
                    "could not log statement results and session ends; trying again"
                ),
            }
        }
        if !stored {
            match store.record_batch(statements, ends).await {
                Ok(()) => stored = true,
                // Records the store cannot encode fail the same way every
                // time: trying again would only hold up every session.
                Err(e @ StoreError::Malformed(_)) => {
                    tracing::error!(error = %e, statements = statements.len(), "session records the store cannot take are dropped");
                    stored = true;
                }
                Err(e) => tracing::error!(
                    error = %e, retry_in = ?wait, statements = statements.len(),
                    session_ends = ends.len(), "could not write session records; trying again"
                ),
            }
        }
        if logged && stored {
            return;
        }
        if stop.given_up() {
            tracing::error!(
                statements = statements.len(),
                session_ends = ends.len(),
                results_logged = logged,
                records_stored = stored,
                "the gateway is stopping and its stores stay unwritable: these records are lost"
            );
            return;
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(RETRY_MAX);
    }
}
