//! The approval desk over the real SQLite store at scale: 150,000 pending
//! requests survive a restart, every one indexed (none forgotten, none filed
//! twice), the oldest expire on time, and one identity's pending requests
//! are capped.

use async_trait::async_trait;
use gatehouse_core::{
    ActionToApprove, ApprovalDesk, ApprovalId, ApprovalMode, ApprovalRequest, ApprovalRoute,
    ApprovalState, AuditError, AuditEvent, AuditTrail, Consulted, Identity, SessionId, Store,
    Timestamp,
};
use gatehouse_store::SqliteStore;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Counts the events the desk logs (the evidence log's role here).
#[derive(Default)]
struct Counted(AtomicUsize);

#[async_trait]
impl AuditTrail for Counted {
    async fn append(&self, events: Vec<AuditEvent>) -> Result<(), AuditError> {
        self.0.fetch_add(events.len(), Ordering::Relaxed);
        Ok(())
    }
}

const REQUESTS: usize = 150_000;
/// The oldest ones: past their deadline at the restart.
const DUE: usize = 1_000;

fn route() -> ApprovalRoute {
    ApprovalRoute {
        name: "dba".into(),
        approver_groups: vec!["dba".into()],
        approvals_needed: 1,
        allow_self_approval: false,
        mode: ApprovalMode::Request,
        request_ttl: Duration::from_secs(3600),
        hold_timeout: Duration::from_secs(60),
        valid_for: Duration::from_secs(600),
    }
}

fn request(i: usize, now: Timestamp) -> ApprovalRequest {
    // Created in order, one millisecond apart; the first DUE have expired.
    let created_at = Timestamp::from_unix_millis(now.unix_millis() - 10_000_000 + i as i64);
    let expires_at = if i < DUE {
        Timestamp::from_unix_millis(now.unix_millis() - 1_000)
    } else {
        now.plus(Duration::from_secs(3600))
    };
    ApprovalRequest {
        id: ApprovalId(format!("req-{i:06}")),
        route: "dba".into(),
        requester: Identity::with_service_token(format!("agent-{}", i % 3), vec![], "t"),
        connection: "app-db".into(),
        session: SessionId::new(),
        statement_seq: 1,
        text: format!("DELETE FROM t WHERE id = {i}"),
        params: Vec::new(),
        fingerprint: format!("fp-{i:06}"),
        policies: vec!["needs-approval".into()],
        analysis: String::new(),
        reason: None,
        created_at,
        expires_at,
        state: ApprovalState::Pending,
        votes: Vec::new(),
        valid_until: None,
        used_at: None,
        max_rows: None,
    }
}

fn asking<'a>(
    routes: &'a [String],
    requester: &'a Identity,
    fingerprint: &'a str,
) -> ActionToApprove<'a> {
    ActionToApprove {
        routes,
        requester,
        connection: "app-db",
        session: SessionId::new(),
        seq: 1,
        text: "DELETE FROM t",
        params: &[],
        fingerprint,
        policies: &[],
        analysis: "",
        reason: None,
        max_rows: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_pending_request_survives_a_restart_and_expires_on_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("g.db")).await.unwrap());
    let now = Timestamp::now();
    for i in 0..REQUESTS {
        store.save_approval(&request(i, now)).await.unwrap();
    }

    // The restart: the desk indexes what the store holds.
    let audit = Arc::new(Counted::default());
    let desk = ApprovalDesk::open(vec![route()], store.clone(), audit.clone())
        .await
        .unwrap()
        .with_pending_limit(60_000);
    for i in 0..REQUESTS {
        assert_eq!(
            desk.pending_for(&format!("fp-{i:06}")),
            Some(ApprovalId(format!("req-{i:06}"))),
            "request {i} is indexed"
        );
    }

    // Running an old request's statement again finds it: nothing is filed twice.
    let routes = vec!["dba".to_string()];
    let agent = Identity::with_service_token("agent-0", vec![], "t");
    match desk.consult(&asking(&routes, &agent, "fp-000000"), now) {
        Consulted::Waiting { id, new: None, .. } => assert_eq!(id.0, "req-000000"),
        other => panic!("the oldest request was not found: {other:?}"),
    }

    // The oldest (the first any cap by recency would drop) expire on time.
    assert_eq!(desk.expire_due(Timestamp::now()).await.unwrap(), DUE);
    assert_eq!(audit.0.load(Ordering::Relaxed), DUE, "one event per expiry");
    let expired = store
        .list_approvals(Some(ApprovalState::Expired), REQUESTS as u32)
        .await
        .unwrap();
    assert_eq!(expired.len(), DUE);
    assert!(expired.iter().all(|r| r.id.0.as_str() < "req-001000"));
    assert_eq!(
        desk.pending_for("fp-000000"),
        None,
        "expired: out of the index"
    );
    assert_eq!(desk.expire_due(Timestamp::now()).await.unwrap(), 0);

    // agent-0 has 49,666 pending (every third request, less the expired);
    // under a cap of 40,000 it may not file another, agent-1 under 60,000 may.
    let capped = ApprovalDesk::open(vec![route()], store.clone(), audit.clone())
        .await
        .unwrap()
        .with_pending_limit(40_000);
    match capped.consult(&asking(&routes, &agent, "fp-new"), now) {
        Consulted::TooManyPending(40_000) => {}
        other => panic!("agent-0 was not capped: {other:?}"),
    }
    match desk.consult(&asking(&routes, &agent, "fp-new"), now) {
        Consulted::Waiting { new: Some(_), .. } => {}
        other => panic!("under the cap a request is filed: {other:?}"),
    }
}
