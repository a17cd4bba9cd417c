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
    ActionRecord, AuditError, AuditEvent, AuditTrail, SessionEnd, SessionStart, Store, StoreError,
};
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
        let task = tokio::spawn(write_batches(store.clone(), audit.clone(), rx));
        (Self { tx, store, audit }, task)
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
) {
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
        let events: Vec<AuditEvent> = statements
            .iter()
            .map(AuditEvent::statement_result)
            .chain(ends.iter().map(AuditEvent::session_end))
            .collect();
        if let Err(e) = audit.record(events).await {
            // The statements were decided and logged before they ran; only
            // their results are lost from the log.
            tracing::error!(error = %e, "could not log statement results and session ends");
        }
        if let Err(e) = store.record_batch(&statements, &ends).await {
            tracing::error!(
                error = %e,
                statements = statements.len(),
                session_ends = ends.len(),
                "could not write session records"
            );
        }
        statements.clear();
        ends.clear();
    }
}
