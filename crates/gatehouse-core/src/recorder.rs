//! The session recorder: the single writer of session and statement records.
//!
//! Session starts are written synchronously (a session that cannot be recorded
//! does not start). Statements and session ends go through a bounded channel
//! to one writer task that commits them in batches (group commit); a full
//! channel slows the sessions down instead of growing memory.

use crate::{SessionEnd, SessionStart, StatementRecord, Store, StoreError};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

// Statements are nearly every event: boxing them would cost an allocation each.
#[allow(clippy::large_enum_variant)]
enum RecordEvent {
    Statement(StatementRecord),
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
}

/// Largest batch committed in one transaction.
const BATCH: usize = 1024;

impl SessionRecorder {
    /// Starts the writer task over `store`, with room for `capacity` queued records.
    /// The task ends once every handle is dropped and the queue is drained.
    pub fn spawn(store: Arc<dyn Store>, capacity: usize) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let task = tokio::spawn(write_batches(store.clone(), rx));
        (Self { tx, store }, task)
    }

    /// Records a session start before the session may proceed.
    pub async fn session_started(&self, start: &SessionStart) -> Result<(), StoreError> {
        self.store.record_session_start(start).await
    }

    /// Queues a finished statement.
    pub async fn statement(&self, record: StatementRecord) -> Result<(), RecorderClosed> {
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

async fn write_batches(store: Arc<dyn Store>, mut rx: mpsc::Receiver<RecordEvent>) {
    let mut events = Vec::with_capacity(BATCH);
    let mut statements = Vec::with_capacity(BATCH);
    let mut ends = Vec::new();
    while rx.recv_many(&mut events, BATCH).await > 0 {
        for e in events.drain(..) {
            match e {
                RecordEvent::Statement(s) => statements.push(s),
                RecordEvent::End(e) => ends.push(e),
            }
        }
        if let Err(e) = store.record_batch(&statements, &ends).await {
            // The evidence log (its own issue) will make this fail closed for the
            // data path; here the loss is at least loud.
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
