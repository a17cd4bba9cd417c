//! The session recorder over the real SQLite store when writes fail for a
//! while (a full disk that frees up): the batch is tried again until it is
//! written; no result, record or session end is lost.

use async_trait::async_trait;
use gatehouse_core::{
    ActionOutcome, ActionRecord, ApprovalId, ApprovalRequest, ApprovalState, AuditError,
    AuditEvent, AuditTrail, Identity, SessionDetail, SessionEnd, SessionEndReason, SessionFilter,
    SessionId, SessionRecorder, SessionStart, SessionSummary, Store, StoreError, Timestamp,
    TokenId, TokenRecord,
};
use gatehouse_store::SqliteStore;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The real store, whose batch writes fail the first `failures` times.
struct FullDisk {
    inner: SqliteStore,
    failures: AtomicUsize,
}

#[async_trait]
impl Store for FullDisk {
    async fn insert_token(&self, t: &TokenRecord) -> Result<(), StoreError> {
        self.inner.insert_token(t).await
    }
    async fn find_token(&self, id: &TokenId) -> Result<Option<TokenRecord>, StoreError> {
        self.inner.find_token(id).await
    }
    async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        self.inner.list_tokens().await
    }
    async fn revoke_token(&self, id: &TokenId, at: Timestamp) -> Result<TokenRecord, StoreError> {
        self.inner.revoke_token(id, at).await
    }
    async fn record_session_start(&self, s: &SessionStart) -> Result<(), StoreError> {
        self.inner.record_session_start(s).await
    }
    async fn record_batch(
        &self,
        st: &[ActionRecord],
        ends: &[SessionEnd],
    ) -> Result<(), StoreError> {
        if self
            .failures
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(StoreError::Unavailable("database or disk is full".into()));
        }
        self.inner.record_batch(st, ends).await
    }
    async fn list_sessions(&self, f: &SessionFilter) -> Result<Vec<SessionSummary>, StoreError> {
        self.inner.list_sessions(f).await
    }
    async fn session(&self, id: SessionId) -> Result<Option<SessionDetail>, StoreError> {
        self.inner.session(id).await
    }
    async fn save_sensitive_column(
        &self,
        c: &gatehouse_core::SensitiveColumn,
    ) -> Result<(), StoreError> {
        self.inner.save_sensitive_column(c).await
    }
    async fn list_sensitive_columns(
        &self,
    ) -> Result<Vec<gatehouse_core::SensitiveColumn>, StoreError> {
        self.inner.list_sensitive_columns().await
    }
    async fn remove_sensitive_column(&self, id: &str, at: Timestamp) -> Result<(), StoreError> {
        self.inner.remove_sensitive_column(id, at).await
    }
    async fn save_approval(&self, r: &ApprovalRequest) -> Result<(), StoreError> {
        self.inner.save_approval(r).await
    }
    async fn approval(&self, id: &ApprovalId) -> Result<Option<ApprovalRequest>, StoreError> {
        self.inner.approval(id).await
    }
    async fn list_approvals_after(
        &self,
        state: ApprovalState,
        after: Option<&(Timestamp, ApprovalId)>,
        limit: u32,
    ) -> Result<Vec<ApprovalRequest>, StoreError> {
        self.inner.list_approvals_after(state, after, limit).await
    }
    async fn list_approvals(
        &self,
        state: Option<ApprovalState>,
        limit: u32,
    ) -> Result<Vec<ApprovalRequest>, StoreError> {
        self.inner.list_approvals(state, limit).await
    }
    async fn update_approval(
        &self,
        r: &ApprovalRequest,
        was: ApprovalState,
        was_votes: usize,
    ) -> Result<bool, StoreError> {
        self.inner.update_approval(r, was, was_votes).await
    }
    async fn use_approval(&self, id: &ApprovalId, at: Timestamp) -> Result<bool, StoreError> {
        self.inner.use_approval(id, at).await
    }
    async fn approvals_changed_since(
        &self,
        since: Option<Timestamp>,
        limit: u32,
    ) -> Result<gatehouse_core::ApprovalChanges, StoreError> {
        self.inner.approvals_changed_since(since, limit).await
    }
    fn node_id(&self) -> &str {
        self.inner.node_id()
    }
    async fn node_heartbeat(
        &self,
        node: &gatehouse_core::NodeRecord,
    ) -> Result<Option<(Timestamp, String)>, StoreError> {
        self.inner.node_heartbeat(node).await
    }
    async fn end_sessions_of_earlier_runs(&self, started: Timestamp) -> Result<u64, StoreError> {
        self.inner.end_sessions_of_earlier_runs(started).await
    }
    async fn node_stopped(&self, at: Timestamp) -> Result<(), StoreError> {
        self.inner.node_stopped(at).await
    }
    async fn list_nodes(&self) -> Result<Vec<gatehouse_core::NodeRecord>, StoreError> {
        self.inner.list_nodes().await
    }
    async fn end_sessions_of_silent_nodes(
        &self,
        silent_for: std::time::Duration,
    ) -> Result<Vec<gatehouse_core::LostNode>, StoreError> {
        self.inner.end_sessions_of_silent_nodes(silent_for).await
    }
}

/// An evidence trail whose appends fail the first `failures` times.
#[derive(Default)]
struct FlakyTrail {
    failures: AtomicUsize,
    events: Mutex<Vec<AuditEvent>>,
}

#[async_trait]
impl AuditTrail for FlakyTrail {
    async fn append(&self, events: Vec<AuditEvent>) -> Result<(), AuditError> {
        if self
            .failures
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(AuditError("disk full".into()));
        }
        self.events.lock().unwrap().extend(events);
        Ok(())
    }
}

#[tokio::test]
async fn results_records_and_session_ends_are_written_once_the_disk_frees_up() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FullDisk {
        inner: SqliteStore::open(&dir.path().join("g.db")).await.unwrap(),
        failures: AtomicUsize::new(0),
    });
    let trail = Arc::new(FlakyTrail::default());
    let (recorder, task) = SessionRecorder::spawn(store.clone(), trail.clone(), 16);
    let start = SessionStart {
        id: SessionId::new(),
        identity: Identity::with_service_token("ci", vec![], "t"),
        connection: "app-db".into(),
        protocol: "postgres".into(),
        client_addr: "127.0.0.1:1".into(),
        client_user: String::new(),
        application_name: None,
        started_at: Timestamp::now(),
    };
    recorder.session_started(&start).await.unwrap();
    // The disk fills: the next three batch writes and two appends fail.
    store.failures.store(3, Ordering::Release);
    trail.failures.store(2, Ordering::Release);
    recorder
        .statement(ActionRecord {
            session_id: start.id,
            seq: 1,
            protocol: "simple".into(),
            text: "DELETE FROM t".into(),
            params: Vec::new(),
            started_at: Timestamp::now(),
            duration_us: 5,
            outcome: ActionOutcome::Ok {
                summary: "DELETE 3".into(),
                count: Some(3),
            },
            decision: None,
            masking: None,
            exchange: None,
        })
        .await
        .unwrap();
    recorder
        .session_ended(SessionEnd {
            id: start.id,
            ended_at: Timestamp::now(),
            bytes_from_client: 10,
            bytes_to_client: 20,
            reason: SessionEndReason::EvidenceLogFailed,
            detail: Some("disk full".into()),
        })
        .await
        .unwrap();
    drop(recorder);
    // The writer retries (with backoff) and ends once everything is written.
    tokio::time::timeout(std::time::Duration::from_secs(30), task)
        .await
        .expect("the recorder finished")
        .unwrap();
    assert_eq!(
        store.failures.load(Ordering::Acquire),
        0,
        "every failure was met"
    );
    let detail = store.session(start.id).await.unwrap().unwrap();
    assert_eq!(
        detail.statements.len(),
        1,
        "the statement's record was kept"
    );
    assert_eq!(
        detail.summary.end.as_ref().map(|e| e.reason),
        Some(SessionEndReason::EvidenceLogFailed),
        "the session end was kept"
    );
    let kinds: Vec<String> = trail
        .events
        .lock()
        .unwrap()
        .iter()
        .map(|e| e.kind.as_str().to_string())
        .collect();
    assert_eq!(kinds, ["session_start", "statement_result", "session_end"]);
}
