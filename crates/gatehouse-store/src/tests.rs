use super::*;
use gatehouse_core::{ActionOutcome, Identity, SessionEndReason};
use std::time::Duration;

fn identity() -> Identity {
    Identity::with_service_token("ci-deploy", vec!["ci".into()], "abcd")
}

#[tokio::test]
async fn tokens_round_trip_and_revoke() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("g.db")).await.unwrap();
    let t = TokenRecord {
        id: TokenId("0011223344556677".into()),
        identity: "ci-deploy".into(),
        groups: vec!["ci".into(), "deployers".into()],
        secret_hash: "ab".repeat(32),
        created_at: Timestamp::from_unix_millis(1_000),
        expires_at: Timestamp::from_unix_millis(9_000),
        revoked_at: None,
        ssh_key: Some("SHA256:key".into()),
    };
    store.insert_token(&t).await.unwrap();
    assert_eq!(store.find_token(&t.id).await.unwrap(), Some(t.clone()));
    let revoked = store
        .revoke_token(&t.id, Timestamp::from_unix_millis(2_000))
        .await
        .unwrap();
    assert_eq!(revoked.revoked_at, Some(Timestamp::from_unix_millis(2_000)));
    // A second revocation keeps the first time.
    let again = store
        .revoke_token(&t.id, Timestamp::from_unix_millis(3_000))
        .await
        .unwrap();
    assert_eq!(again.revoked_at, Some(Timestamp::from_unix_millis(2_000)));
    assert!(matches!(
        store
            .revoke_token(&TokenId("nope".into()), Timestamp::now())
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.list_tokens().await.unwrap().len(), 1);
}

#[tokio::test]
async fn sessions_and_statements_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("g.db")).await.unwrap();
    let start = SessionStart {
        id: SessionId::new(),
        identity: identity(),
        connection: "app-db".into(),
        protocol: "postgres".into(),
        client_addr: "127.0.0.1:5555".into(),
        client_user: "alice".into(),
        application_name: Some("psql".into()),
        started_at: Timestamp::from_unix_millis(10),
    };
    store.record_session_start(&start).await.unwrap();
    let st = ActionRecord {
        session_id: start.id,
        seq: 1,
        protocol: "extended".into(),
        text: "select $1".into(),
        params: vec![Some("1".into()), None],
        started_at: Timestamp::from_unix_millis(11),
        duration_us: 42,
        outcome: ActionOutcome::Ok {
            summary: "SELECT 1".into(),
            count: Some(1),
        },
        decision: Some(gatehouse_core::DecisionRecord {
            decision: gatehouse_core::Decided::Allow,
            policies: vec!["ci-read".into()],
            mode: gatehouse_core::DecidedIn::Enforce,
            reason: None,
        }),
        masking: Some(gatehouse_core::MaskingSummary {
            values_masked: 3,
            detectors: vec![("card".into(), 2)],
            rules: vec![("*ssn*".into(), 1)],
            exempt_group: None,
        }),
        exchange: Some(gatehouse_core::HttpExchange {
            request_headers: vec![("accept".into(), "application/json".into())],
            request_bytes: 12,
            status: 200,
            response_headers: vec![("content-type".into(), "application/json".into())],
            response_bytes: 2,
            response_body: Some("{}".into()),
            stream: Some(gatehouse_core::StreamRecord {
                protocol: "v5.channel.k8s.io".into(),
                recording: Some("s-1.cast".into()),
                recording_sha256: Some("ab".repeat(32)),
                recording_bytes: 120,
                exit_code: Some(3),
                ..Default::default()
            }),
        }),
    };
    let end = SessionEnd {
        id: start.id,
        ended_at: Timestamp::from_unix_millis(20),
        bytes_from_client: 100,
        bytes_to_client: 200,
        reason: SessionEndReason::ClientTerminated,
        detail: None,
    };
    store
        .record_batch(std::slice::from_ref(&st), std::slice::from_ref(&end))
        .await
        .unwrap();
    let detail = store.session(start.id).await.unwrap().unwrap();
    assert_eq!(detail.summary.start, start);
    assert_eq!(detail.summary.statement_count, 1);
    assert_eq!(detail.statements, vec![st]);
    let e = detail.summary.end.unwrap();
    assert_eq!(e.reason, SessionEndReason::ClientTerminated);
    assert_eq!((e.bytes_from_client, e.bytes_to_client), (100, 200));

    let only_other = SessionFilter {
        identity: Some("someone-else".into()),
        ..Default::default()
    };
    assert!(store.list_sessions(&only_other).await.unwrap().is_empty());
    let by_conn = SessionFilter {
        connection: Some("app-db".into()),
        ..Default::default()
    };
    assert_eq!(store.list_sessions(&by_conn).await.unwrap().len(), 1);
    // The console's filters: protocol, start time, and what happened.
    let count = |f: SessionFilter| {
        let store = &store;
        async move { store.list_sessions(&f).await.unwrap().len() }
    };
    let at = Timestamp::from_unix_millis;
    let protocol = |p: &str| SessionFilter {
        protocol: Some(p.into()),
        ..Default::default()
    };
    assert_eq!(count(protocol("postgres")).await, 1);
    assert_eq!(count(protocol("ssh")).await, 0);
    let window = |since: Option<i64>, until: Option<i64>| SessionFilter {
        since: since.map(at),
        until: until.map(at),
        ..Default::default()
    };
    assert_eq!(count(window(Some(10), None)).await, 1, "since is inclusive");
    assert_eq!(count(window(Some(11), None)).await, 0);
    assert_eq!(count(window(None, Some(10))).await, 0, "until is exclusive");
    assert_eq!(count(window(Some(5), Some(11))).await, 1);
    let outcome = |o: SessionOutcome| SessionFilter {
        outcome: Some(o),
        ..Default::default()
    };
    assert_eq!(count(outcome(SessionOutcome::Masked)).await, 1);
    assert_eq!(count(outcome(SessionOutcome::Refused)).await, 0);
    assert_eq!(count(outcome(SessionOutcome::Approved)).await, 0);
}

#[test]
fn inserts_take_few_distinct_sizes() {
    let rows: Vec<u32> = (0..1234).collect();
    let sizes: Vec<usize> = insert_chunks(&rows, STATEMENT_ROWS_PER_INSERT)
        .map(<[u32]>::len)
        .collect();
    assert_eq!(sizes, [256, 256, 256, 256, 128, 64, 16, 2]);
    let joined: Vec<u32> = insert_chunks(&rows, STATEMENT_ROWS_PER_INSERT)
        .flatten()
        .copied()
        .collect();
    assert_eq!(joined, rows);
    // Every batch size from 1 to 2,000 uses only the nine power-of-two sizes.
    let mut seen = std::collections::BTreeSet::new();
    for n in 1..=2000 {
        seen.extend(
            insert_chunks(&rows[..n.min(rows.len())], STATEMENT_ROWS_PER_INSERT).map(<[u32]>::len),
        );
    }
    assert_eq!(seen.len(), 9);
    assert!(insert_chunks(&rows[..0], STATEMENT_ROWS_PER_INSERT)
        .next()
        .is_none());
}

#[tokio::test]
async fn large_batches_are_split_and_kept_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("g.db")).await.unwrap();
    let start = SessionStart {
        id: SessionId::new(),
        identity: identity(),
        connection: "app-db".into(),
        protocol: "postgres".into(),
        client_addr: "127.0.0.1:1".into(),
        client_user: "u".into(),
        application_name: None,
        started_at: Timestamp::from_unix_millis(1),
    };
    store.record_session_start(&start).await.unwrap();
    let statements: Vec<ActionRecord> = (1..=1234u64)
        .map(|seq| ActionRecord {
            session_id: start.id,
            seq,
            protocol: "simple".into(),
            text: format!("select {seq}"),
            params: vec![],
            started_at: Timestamp::from_unix_millis(seq as i64),
            duration_us: seq,
            outcome: if seq % 2 == 0 {
                ActionOutcome::Ok {
                    summary: "SELECT 1".into(),
                    count: Some(1),
                }
            } else {
                ActionOutcome::Error {
                    code: "42501".into(),
                    message: "no".into(),
                }
            },
            decision: None,
            masking: None,
            exchange: None,
        })
        .collect();
    store.record_batch(&statements, &[]).await.unwrap();
    let d = store.session(start.id).await.unwrap().unwrap();
    assert_eq!(d.statements, statements);
}

#[tokio::test]
async fn approvals_round_trip_and_filter_by_state() {
    use gatehouse_core::{statement_fingerprint, ApprovalId, ApprovalRequest, ApprovalState};
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("g.db")).await.unwrap();
    let request = |at: i64, text: &str| ApprovalRequest {
        id: ApprovalId::new(),
        route: "dba".into(),
        requester: identity(),
        connection: "app-db".into(),
        session: SessionId::new(),
        statement_seq: 1,
        text: text.into(),
        params: vec![Some("7".into()), None],
        fingerprint: statement_fingerprint("ci-deploy", "app-db", "simple", text, &[]),
        policies: vec!["p".into()],
        analysis: "ci-deploy (delete on public.a) requires approval".into(),
        reason: Some("OPS-1".into()),
        created_at: Timestamp::from_unix_millis(at),
        expires_at: Timestamp::from_unix_millis(at + 60_000),
        state: ApprovalState::Pending,
        votes: Vec::new(),
        valid_until: None,
        used_at: None,
        max_rows: None,
    };
    let a = request(1_000, "DELETE FROM a");
    let mut b = request(2_000, "DELETE FROM b");
    store.save_approval(&a).await.unwrap();
    store.save_approval(&b).await.unwrap();
    assert_eq!(store.approval(&a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(store.approval(&ApprovalId::new()).await.unwrap(), None);
    b.state = ApprovalState::Denied;
    store.save_approval(&b).await.unwrap();
    let all = store.list_approvals(None, 10).await.unwrap();
    assert_eq!(
        all,
        vec![b.clone(), a.clone()],
        "newest first, updated in place"
    );
    let pending = store
        .list_approvals(Some(ApprovalState::Pending), 10)
        .await
        .unwrap();
    assert_eq!(pending, vec![a]);
    assert_eq!(store.list_approvals(None, 1).await.unwrap().len(), 1);
}

/// The logical size of the database (WAL included), in bytes.
async fn database_bytes(store: &SqliteStore) -> i64 {
    let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    let size: i64 = sqlx::query_scalar("PRAGMA page_size")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    pages * size
}

#[tokio::test]
async fn a_held_statement_text_is_stored_once() {
    use gatehouse_core::{statement_fingerprint, ApprovalId, ApprovalRequest, ApprovalState};
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("g.db")).await.unwrap();
    let start = SessionStart {
        id: SessionId::new(),
        identity: identity(),
        connection: "app-db".into(),
        protocol: "postgres".into(),
        client_addr: "127.0.0.1:1".into(),
        client_user: "u".into(),
        application_name: None,
        started_at: Timestamp::from_unix_millis(1),
    };
    store.record_session_start(&start).await.unwrap();
    let before = database_bytes(&store).await;

    // A 1 MiB statement: refused with a request id, voted on three times,
    // then run (request mode names it in two session records).
    const MIB: usize = 1 << 20;
    let text = format!("DELETE FROM t WHERE note = '{}'", "x".repeat(MIB));
    let mut request = ApprovalRequest {
        id: ApprovalId::new(),
        route: "dba".into(),
        requester: identity(),
        connection: "app-db".into(),
        session: start.id,
        statement_seq: 1,
        text: text.clone(),
        params: vec![],
        fingerprint: statement_fingerprint("ci-deploy", "app-db", "simple", &text, &[]),
        policies: vec!["p".into()],
        analysis: String::new(),
        reason: None,
        created_at: Timestamp::from_unix_millis(1_000),
        expires_at: Timestamp::from_unix_millis(61_000),
        state: ApprovalState::Pending,
        votes: Vec::new(),
        valid_until: None,
        used_at: None,
        max_rows: None,
    };
    store.save_approval(&request).await.unwrap();
    for at in [2_000, 3_000] {
        request.used_at = Some(Timestamp::from_unix_millis(at));
        store.save_approval(&request).await.unwrap();
    }
    request.state = ApprovalState::Approved;
    store.save_approval(&request).await.unwrap();
    let run = |seq: u64, text: &str| ActionRecord {
        session_id: start.id,
        seq,
        protocol: "simple".into(),
        text: text.into(),
        params: vec![],
        started_at: Timestamp::from_unix_millis(seq as i64),
        duration_us: 1,
        outcome: ActionOutcome::Incomplete,
        decision: None,
        masking: None,
        exchange: None,
    };
    let statements = [run(1, &text), run(2, &text), run(3, "select 1")];
    store.record_batch(&statements, &[]).await.unwrap();

    let grew = database_bytes(&store).await - before;
    assert!(
        grew < (MIB + MIB / 4) as i64,
        "five records of a 1 MiB text grew the store by {grew} bytes: stored more than once"
    );
    let shared: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM statement_texts")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert_eq!(shared, 1, "the short statement stays in its row");

    // Every reader gets the whole text back.
    assert_eq!(
        store.approval(&request.id).await.unwrap(),
        Some(request.clone())
    );
    assert_eq!(
        store.list_approvals(None, 10).await.unwrap(),
        vec![request.clone()]
    );
    assert_eq!(
        store
            .list_approvals_after(ApprovalState::Approved, None, 10)
            .await
            .unwrap(),
        vec![request.clone()]
    );
    assert_eq!(
        store.session(start.id).await.unwrap().unwrap().statements,
        statements
    );

    // A text gone from the store is an error that names the record, never
    // an empty statement.
    sqlx::query("DELETE FROM statement_texts")
        .execute(&store.pool)
        .await
        .unwrap();
    let err = store.session(start.id).await.unwrap_err().to_string();
    assert!(
        err.contains(&format!("statement {}/1", start.id)) && err.contains("statement_texts"),
        "{err}"
    );
    let err = store.approval(&request.id).await.unwrap_err().to_string();
    assert!(err.contains(&format!("approval {}", request.id)), "{err}");
}

fn pending_request(at: i64, text: &str) -> gatehouse_core::ApprovalRequest {
    use gatehouse_core::{statement_fingerprint, ApprovalId, ApprovalRequest, ApprovalState};
    ApprovalRequest {
        id: ApprovalId::new(),
        route: "dba".into(),
        requester: identity(),
        connection: "app-db".into(),
        session: SessionId::new(),
        statement_seq: 1,
        text: text.into(),
        params: vec![],
        fingerprint: statement_fingerprint("ci-deploy", "app-db", "simple", text, &[]),
        policies: vec!["p".into()],
        analysis: String::new(),
        reason: None,
        created_at: Timestamp::from_unix_millis(at),
        expires_at: Timestamp::from_unix_millis(at + 60_000),
        state: ApprovalState::Pending,
        votes: Vec::new(),
        valid_until: None,
        used_at: None,
        max_rows: None,
    }
}

fn approve(r: &mut gatehouse_core::ApprovalRequest, approver: &str, at: i64) {
    r.votes.push(gatehouse_core::ApprovalVote {
        approver: approver.into(),
        approve: true,
        comment: "ok".into(),
        at: Timestamp::from_unix_millis(at),
    });
    r.state = ApprovalState::Approved;
    r.valid_until = Some(Timestamp::from_unix_millis(at + 600_000));
}

#[tokio::test]
async fn approval_updates_are_conditional_and_an_approval_is_used_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("g.db")).await.unwrap();
    // A long text too: it is stored by content, and kept across the writes.
    for text in [
        "DELETE FROM a".to_string(),
        format!("DELETE FROM a -- {}", "x".repeat(4096)),
    ] {
        let mut r = pending_request(1_000, &text);
        store.save_approval(&r).await.unwrap();
        assert!(
            !store.use_approval(&r.id, Timestamp::now()).await.unwrap(),
            "pending"
        );

        let stale = r.clone();
        approve(&mut r, "dba-1", 2_000);
        assert!(store
            .update_approval(&r, ApprovalState::Pending, 0)
            .await
            .unwrap());
        // Another node's vote cast on the state before: refused, nothing written.
        let mut late = stale.clone();
        approve(&mut late, "dba-2", 2_500);
        assert!(!store
            .update_approval(&late, ApprovalState::Pending, 0)
            .await
            .unwrap());
        assert!(!store
            .update_approval(&late, ApprovalState::Approved, 0)
            .await
            .unwrap());
        assert_eq!(store.approval(&r.id).await.unwrap(), Some(r.clone()));

        let at = Timestamp::from_unix_millis(3_000);
        assert!(store.use_approval(&r.id, at).await.unwrap());
        assert!(!store.use_approval(&r.id, Timestamp::now()).await.unwrap());
        let used = store.approval(&r.id).await.unwrap().unwrap();
        assert_eq!(used.state, ApprovalState::Used);
        assert_eq!(used.used_at, Some(at));
        assert_eq!(
            used,
            ApprovalRequest {
                state: ApprovalState::Used,
                used_at: Some(at),
                ..r.clone()
            }
        );
        let listed = store
            .list_approvals(Some(ApprovalState::Used), 10)
            .await
            .unwrap();
        assert!(listed.contains(&used));
        // Used: no update cast on the approved state lands any more.
        assert!(!store
            .update_approval(&r, ApprovalState::Approved, 1)
            .await
            .unwrap());
    }
}

#[tokio::test]
async fn approvals_changed_since_returns_the_changed_ones_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("g.db")).await.unwrap();
    let pause = || tokio::time::sleep(Duration::from_millis(5));
    let mut a = pending_request(1_000, "DELETE FROM a");
    let b = pending_request(2_000, "DELETE FROM b");
    store.save_approval(&a).await.unwrap();
    pause().await;
    let (first, all) = changed_of(&store, None, 10).await;
    assert_eq!(all, vec![a.clone()]);
    pause().await;
    store.save_approval(&b).await.unwrap();
    pause().await;
    let (second, changed) = changed_of(&store, Some(first), 10).await;
    assert_eq!(changed, vec![b.clone()]);
    assert!(second > first);
    pause().await;
    approve(&mut a, "dba-1", 3_000);
    assert!(store
        .update_approval(&a, ApprovalState::Pending, 0)
        .await
        .unwrap());
    let (_, changed) = changed_of(&store, Some(second), 10).await;
    assert_eq!(changed, vec![a.clone()]);
    // Oldest change first, at most `limit`.
    let (_, all) = changed_of(&store, None, 10).await;
    assert_eq!(all, vec![b.clone(), a.clone()]);
    let (_, one) = changed_of(&store, None, 1).await;
    assert_eq!(one, vec![b]);
}

fn node(id: &str, heartbeat_at: i64) -> NodeRecord {
    NodeRecord {
        id: id.into(),
        api_address: format!("{id}.example:8080"),
        version: "0.1.0".into(),
        started_at: Timestamp::from_unix_millis(1_000),
        heartbeat_at: Timestamp::from_unix_millis(heartbeat_at),
        stopped_at: None,
        lost: None,
    }
}

fn session_start(started_at: i64) -> SessionStart {
    SessionStart {
        id: SessionId::new(),
        identity: identity(),
        connection: "app-db".into(),
        protocol: "postgres".into(),
        client_addr: "127.0.0.1:1".into(),
        client_user: "u".into(),
        application_name: None,
        started_at: Timestamp::from_unix_millis(started_at),
    }
}

#[tokio::test]
async fn a_silent_nodes_open_sessions_are_ended_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.db");
    let n1 = SqliteStore::open_for_node(&path, "n1").await.unwrap();
    let n2 = SqliteStore::open_for_node(&path, "n2").await.unwrap();
    let n3 = SqliteStore::open_for_node(&path, "n3").await.unwrap();
    assert_eq!((n1.node_id(), n2.node_id()), ("n1", "n2"));
    assert!(n1.changes().is_none());
    assert!(n1.node_heartbeat(&node("n2", 1)).await.is_err());
    // One node uses a SQLite store: heartbeats keep the node's clock. n2
    // and n3 last beat an hour ago.
    let hour_ago = Timestamp::now().unix_millis() - 3_600_000;
    n1.node_heartbeat(&node("n1", Timestamp::now().unix_millis()))
        .await
        .unwrap();
    n2.node_heartbeat(&node("n2", hour_ago)).await.unwrap();
    n3.node_heartbeat(&node("n3", hour_ago)).await.unwrap();
    n3.node_stopped(Timestamp::from_unix_millis(6_000))
        .await
        .unwrap();

    // n2 serves two sessions, one ended; n3 (stopped cleanly) one left open.
    let open = session_start(2_000);
    let closed = session_start(2_100);
    let n3s = session_start(2_200);
    n2.record_session_start(&open).await.unwrap();
    n2.record_session_start(&closed).await.unwrap();
    n3.record_session_start(&n3s).await.unwrap();
    let end = SessionEnd {
        id: closed.id,
        ended_at: Timestamp::from_unix_millis(3_000),
        bytes_from_client: 1,
        bytes_to_client: 2,
        reason: SessionEndReason::ClientTerminated,
        detail: None,
    };
    n2.record_batch(&[], std::slice::from_ref(&end))
        .await
        .unwrap();

    // Silent for an hour, not for two.
    let two_hours = std::time::Duration::from_secs(7_200);
    let ten_minutes = std::time::Duration::from_secs(600);
    assert!(n1
        .end_sessions_of_silent_nodes(two_hours)
        .await
        .unwrap()
        .is_empty());
    let lost = n1.end_sessions_of_silent_nodes(ten_minutes).await.unwrap();
    assert_eq!(
        lost,
        vec![LostNode {
            id: "n2".into(),
            heartbeat_at: Timestamp::from_unix_millis(hour_ago),
            sessions_ended: 1,
        }]
    );
    // Done once: n2 itself would not take n1 (heartbeat recent), nor again n2.
    assert!(n1
        .end_sessions_of_silent_nodes(ten_minutes)
        .await
        .unwrap()
        .is_empty());
    let e = n1
        .session(open.id)
        .await
        .unwrap()
        .unwrap()
        .summary
        .end
        .unwrap();
    assert_eq!(e.reason, SessionEndReason::NodeLost);
    assert_eq!((e.bytes_from_client, e.bytes_to_client), (0, 0));
    let detail = e.detail.unwrap();
    assert!(
        detail.contains("node n2") && detail.contains("by node n1"),
        "{detail}"
    );
    let e = n1
        .session(closed.id)
        .await
        .unwrap()
        .unwrap()
        .summary
        .end
        .unwrap();
    assert_eq!(e.reason, SessionEndReason::ClientTerminated);
    assert!(n1
        .session(n3s.id)
        .await
        .unwrap()
        .unwrap()
        .summary
        .end
        .is_none());

    let nodes = n1.list_nodes().await.unwrap();
    assert_eq!(
        nodes.iter().map(|n| n.id.as_str()).collect::<Vec<_>>(),
        ["n1", "n2", "n3"]
    );
    assert_eq!(
        nodes[1].lost.as_ref().map(|(_, by)| by.as_str()),
        Some("n1")
    );
    assert_eq!(
        nodes[2].stopped_at,
        Some(Timestamp::from_unix_millis(6_000))
    );
    // n2 heartbeats again: alive again (and told it was taken for lost),
    // its ended session stays ended.
    let cleared = n2.node_heartbeat(&node("n2", 21_000)).await.unwrap();
    assert_eq!(cleared.map(|(_, by)| by), Some("n1".to_string()));
    let nodes = n1.list_nodes().await.unwrap();
    assert_eq!(nodes[1], node("n2", 21_000));
    assert_eq!(
        n1.session(open.id)
            .await
            .unwrap()
            .unwrap()
            .summary
            .end
            .unwrap()
            .reason,
        SessionEndReason::NodeLost
    );
}

/// The requests changed since `since`, without their times.
async fn changed_of(
    store: &impl gatehouse_core::Store,
    since: Option<Timestamp>,
    limit: u32,
) -> (Timestamp, Vec<gatehouse_core::ApprovalRequest>) {
    let page = store.approvals_changed_since(since, limit).await.unwrap();
    (page.now, page.changed.into_iter().map(|(_, r)| r).collect())
}
