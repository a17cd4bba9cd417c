//! The shared PostgreSQL store against a real PostgreSQL (a throwaway
//! cluster, `common::pg`): every Store operation with the SQLite store's
//! semantics, the races between nodes decided once, notifications, schema
//! versions, and connection settings and errors.

mod common;

use common::pg::{Cluster, PASSWORD};
use gatehouse_core::{
    statement_fingerprint, ActionOutcome, ActionRecord, ApprovalId, ApprovalRequest, ApprovalState,
    ApprovalVote, FoundBy, Identity, NodeRecord, SensitiveColumn, SessionEnd, SessionEndReason,
    SessionFilter, SessionId, SessionStart, Store, StoreError, Timestamp, TokenId, TokenRecord,
};
use gatehouse_store::{PgStore, SchemaState, StoreTls};
use sqlx::{Connection, PgConnection};
use std::sync::Arc;
use std::time::Duration;

/// The newest migration this gatehouse knows.
const KNOWN: i64 = 2;

/// A store on a new database of the shared cluster, for node `n1`.
async fn store(name: &str) -> (PgStore, String) {
    let cluster = Cluster::shared();
    let db = cluster.database(name).await;
    let store = PgStore::connect(cluster.settings(&db, "n1")).await.unwrap();
    (store, db)
}

fn identity() -> Identity {
    Identity::with_service_token("ci-deploy", vec!["ci".into()], "abcd")
}

fn session_start(started_at: i64) -> SessionStart {
    SessionStart {
        id: SessionId::new(),
        identity: identity(),
        connection: "app-db".into(),
        protocol: "postgres".into(),
        client_addr: "127.0.0.1:5555".into(),
        client_user: "alice".into(),
        application_name: Some("psql".into()),
        started_at: Timestamp::from_unix_millis(started_at),
    }
}

fn statement(session: SessionId, seq: u64, text: &str) -> ActionRecord {
    ActionRecord {
        session_id: session,
        seq,
        protocol: "extended".into(),
        text: text.into(),
        params: vec![Some("1".into()), None],
        started_at: Timestamp::from_unix_millis(10 + seq as i64),
        duration_us: seq * 3,
        outcome: match seq % 3 {
            0 => ActionOutcome::Ok {
                summary: "SELECT 1".into(),
                count: Some(1),
            },
            1 => ActionOutcome::Error {
                code: "42501".into(),
                message: "permission denied".into(),
            },
            _ => ActionOutcome::Incomplete,
        },
        decision: seq
            .is_multiple_of(2)
            .then(|| gatehouse_core::DecisionRecord {
                decision: gatehouse_core::Decided::Allow,
                policies: vec!["ci-read".into()],
                mode: gatehouse_core::DecidedIn::Enforce,
                reason: Some("because".into()),
            }),
        masking: (seq == 1).then(|| gatehouse_core::MaskingSummary {
            values_masked: 3,
            detectors: vec![("card".into(), 2)],
            rules: vec![("*ssn*".into(), 1)],
            exempt_group: None,
        }),
        exchange: (seq == 2).then(|| gatehouse_core::HttpExchange {
            request_headers: vec![("accept".into(), "application/json".into())],
            request_bytes: 12,
            status: 200,
            response_headers: vec![],
            response_bytes: 2,
            response_body: Some("{}".into()),
            stream: None,
        }),
    }
}

fn request(at: i64, text: &str) -> ApprovalRequest {
    ApprovalRequest {
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
    }
}

fn approve(r: &mut ApprovalRequest, approver: &str, at: i64) {
    r.votes.push(ApprovalVote {
        approver: approver.into(),
        approve: true,
        comment: "ok".into(),
        at: Timestamp::from_unix_millis(at),
    });
    r.state = ApprovalState::Approved;
    r.valid_until = Some(Timestamp::from_unix_millis(at + 600_000));
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

#[tokio::test]
async fn tokens_round_trip_and_revoke_keeps_the_first_time() {
    let (store, _) = store("tokens").await;
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
    let older = TokenRecord {
        id: TokenId("ffee".into()),
        created_at: Timestamp::from_unix_millis(500),
        ssh_key: None,
        ..t.clone()
    };
    store.insert_token(&t).await.unwrap();
    store.insert_token(&older).await.unwrap();
    assert!(store.insert_token(&t).await.is_err(), "ids are unique");
    assert_eq!(store.find_token(&t.id).await.unwrap(), Some(t.clone()));
    assert_eq!(
        store.find_token(&TokenId("nope".into())).await.unwrap(),
        None
    );
    assert_eq!(store.list_tokens().await.unwrap(), vec![t.clone(), older]);
    let revoked = store
        .revoke_token(&t.id, Timestamp::from_unix_millis(2_000))
        .await
        .unwrap();
    assert_eq!(revoked.revoked_at, Some(Timestamp::from_unix_millis(2_000)));
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
}

#[tokio::test]
async fn sessions_and_statements_round_trip() {
    let (store, db) = store("sessions").await;
    let start = session_start(10);
    store.record_session_start(&start).await.unwrap();
    let long = format!("SELECT '{}'", "x".repeat(4096));
    let statements = vec![
        statement(start.id, 1, "select $1"),
        statement(start.id, 2, &long),
        statement(start.id, 3, &long),
        statement(start.id, 4, "select 4"),
    ];
    let end = SessionEnd {
        id: start.id,
        ended_at: Timestamp::from_unix_millis(20),
        bytes_from_client: 100,
        bytes_to_client: 200,
        reason: SessionEndReason::ClientTerminated,
        detail: Some("bye".into()),
    };
    store
        .record_batch(&statements[..2], std::slice::from_ref(&end))
        .await
        .unwrap();
    // A batch tried again, with more: its rows already there are skipped.
    store.record_batch(&statements, &[]).await.unwrap();
    let detail = store.session(start.id).await.unwrap().unwrap();
    assert_eq!(detail.summary.start, start);
    assert_eq!(detail.summary.statement_count, 4);
    assert_eq!(detail.statements, statements);
    let e = detail.summary.end.unwrap();
    assert_eq!(e.reason, SessionEndReason::ClientTerminated);
    assert_eq!((e.bytes_from_client, e.bytes_to_client), (100, 200));
    assert_eq!(e.detail.as_deref(), Some("bye"));
    assert_eq!(store.session(SessionId::new()).await.unwrap(), None);

    let mut conn = Cluster::shared().connect(&db).await;
    let (texts, node): (i64, Option<String>) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM statement_texts), \
         (SELECT node_id FROM sessions WHERE id = $1)",
    )
    .bind(start.id.to_string())
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(texts, 1, "the long text is stored once");
    assert_eq!(node.as_deref(), Some("n1"));

    // Listing: newest first, filtered, limited.
    let mut other = session_start(30);
    other.identity.subject = "bob".into();
    other.connection = "other-db".into();
    store.record_session_start(&other).await.unwrap();
    let all = store
        .list_sessions(&SessionFilter::default())
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|s| s.start.id).collect::<Vec<_>>(),
        [other.id, start.id]
    );
    assert_eq!(all[1].statement_count, 4);
    assert!(all[0].end.is_none());
    let by = |identity: Option<&str>, connection: Option<&str>, limit: Option<u32>| SessionFilter {
        identity: identity.map(Into::into),
        connection: connection.map(Into::into),
        limit,
        ..Default::default()
    };
    let ids = |v: Vec<gatehouse_core::SessionSummary>| -> Vec<SessionId> {
        v.into_iter().map(|s| s.start.id).collect()
    };
    assert_eq!(
        ids(store
            .list_sessions(&by(Some("bob"), None, None))
            .await
            .unwrap()),
        [other.id]
    );
    assert_eq!(
        ids(store
            .list_sessions(&by(None, Some("app-db"), None))
            .await
            .unwrap()),
        [start.id]
    );
    assert!(store
        .list_sessions(&by(Some("bob"), Some("app-db"), None))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        ids(store.list_sessions(&by(None, None, Some(1))).await.unwrap()),
        [other.id]
    );
    // The console's filters: protocol, start time, and what happened.
    let list = |f: SessionFilter| {
        let store = &store;
        async move { ids(store.list_sessions(&f).await.unwrap()) }
    };
    let f = SessionFilter::default;
    assert_eq!(
        list(SessionFilter {
            protocol: Some("postgres".into()),
            ..f()
        })
        .await,
        [other.id, start.id]
    );
    assert!(list(SessionFilter {
        protocol: Some("ssh".into()),
        ..f()
    })
    .await
    .is_empty());
    let at = Timestamp::from_unix_millis;
    assert_eq!(
        list(SessionFilter {
            since: Some(at(30)),
            ..f()
        })
        .await,
        [other.id]
    );
    assert_eq!(
        list(SessionFilter {
            until: Some(at(30)),
            ..f()
        })
        .await,
        [start.id]
    );
    use gatehouse_core::SessionOutcome;
    assert_eq!(
        list(SessionFilter {
            outcome: Some(SessionOutcome::Masked),
            ..f()
        })
        .await,
        [start.id]
    );
    assert!(list(SessionFilter {
        outcome: Some(SessionOutcome::Refused),
        ..f()
    })
    .await
    .is_empty());
    assert!(list(SessionFilter {
        outcome: Some(SessionOutcome::Approved),
        ..f()
    })
    .await
    .is_empty());
}

#[tokio::test]
async fn large_batches_are_split_and_kept_in_order() {
    let (store, _) = store("large_batches").await;
    let start = session_start(1);
    store.record_session_start(&start).await.unwrap();
    // Over PostgreSQL's 65,535 parameters in one INSERT (19 per row), with
    // long texts among them.
    let statements: Vec<ActionRecord> = (1..=4000u64)
        .map(|seq| {
            let text = if seq % 500 == 0 {
                format!("select '{}' -- {seq}", "y".repeat(2000))
            } else {
                format!("select {seq}")
            };
            statement(start.id, seq, &text)
        })
        .collect();
    store.record_batch(&statements, &[]).await.unwrap();
    let d = store.session(start.id).await.unwrap().unwrap();
    assert_eq!(d.statements, statements);
}

#[tokio::test]
async fn a_nul_in_a_text_is_stored_as_a_replacement_character() {
    let (store, _) = store("nul_texts").await;
    let start = session_start(1);
    store.record_session_start(&start).await.unwrap();
    let st = statement(start.id, 1, "select 'a\0b'");
    store
        .record_batch(std::slice::from_ref(&st), &[])
        .await
        .unwrap();
    let d = store.session(start.id).await.unwrap().unwrap();
    assert_eq!(d.statements[0].text, "select 'a\u{FFFD}b'");
}

#[tokio::test]
async fn approvals_round_trip_list_and_page() {
    let (store, _) = store("approvals").await;
    let a = request(1_000, "DELETE FROM a");
    let mut b = request(2_000, &format!("DELETE FROM b -- {}", "z".repeat(3000)));
    let c = request(2_000, "DELETE FROM c");
    for r in [&a, &b, &c] {
        store.save_approval(r).await.unwrap();
    }
    assert_eq!(store.approval(&a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(store.approval(&b.id).await.unwrap(), Some(b.clone()));
    assert_eq!(store.approval(&ApprovalId::new()).await.unwrap(), None);
    b.state = ApprovalState::Denied;
    store.save_approval(&b).await.unwrap();
    // c and b share a creation time: the id decides (c's is the larger).
    assert_eq!(
        store.list_approvals(None, 10).await.unwrap(),
        vec![c.clone(), b.clone(), a.clone()],
        "newest first, updated in place"
    );
    assert_eq!(
        store
            .list_approvals(Some(ApprovalState::Pending), 10)
            .await
            .unwrap(),
        vec![c.clone(), a.clone()]
    );
    assert_eq!(
        store.list_approvals(None, 1).await.unwrap(),
        vec![c.clone()]
    );

    // Keyset pages through every pending one, oldest first.
    let mut pending: Vec<ApprovalRequest> = (0..7)
        .map(|i| request(5_000 + (i / 2) * 10, &format!("DELETE FROM t{i}")))
        .collect();
    for r in &pending {
        store.save_approval(r).await.unwrap();
    }
    pending.extend([a.clone(), c.clone()]);
    pending.sort_by(|x, y| (x.created_at, &x.id).cmp(&(y.created_at, &y.id)));
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_approvals_after(ApprovalState::Pending, after.as_ref(), 2)
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        after = Some((last.created_at, last.id.clone()));
        assert!(page.len() <= 2);
        seen.extend(page);
    }
    assert_eq!(seen, pending);
}

#[tokio::test]
async fn an_update_cast_on_a_stale_state_is_refused() {
    let (store, _) = store("update_approval").await;
    let mut r = request(1_000, &format!("DELETE FROM a -- {}", "x".repeat(2000)));
    store.save_approval(&r).await.unwrap();
    let stale = r.clone();
    approve(&mut r, "dba-1", 2_000);
    assert!(store
        .update_approval(&r, ApprovalState::Pending, 0)
        .await
        .unwrap());
    let mut late = stale;
    approve(&mut late, "dba-2", 2_100);
    assert!(!store
        .update_approval(&late, ApprovalState::Pending, 0)
        .await
        .unwrap());
    assert!(!store
        .update_approval(&late, ApprovalState::Approved, 0)
        .await
        .unwrap());
    assert_eq!(store.approval(&r.id).await.unwrap(), Some(r.clone()));

    // Used: its body says so too, and an update cast before is refused.
    let at = Timestamp::from_unix_millis(1_795_000_000_123);
    assert!(store.use_approval(&r.id, at).await.unwrap());
    let used = store.approval(&r.id).await.unwrap().unwrap();
    assert_eq!(
        used,
        ApprovalRequest {
            state: ApprovalState::Used,
            used_at: Some(at),
            ..r.clone()
        }
    );
    assert!(!store
        .update_approval(&r, ApprovalState::Approved, 1)
        .await
        .unwrap());
    assert_eq!(
        store
            .list_approvals(Some(ApprovalState::Used), 10)
            .await
            .unwrap(),
        vec![used]
    );
    let pending = request(3_000, "DELETE FROM p");
    store.save_approval(&pending).await.unwrap();
    assert!(!store.use_approval(&pending.id, at).await.unwrap());
    assert!(!store.use_approval(&ApprovalId::new(), at).await.unwrap());
}

#[tokio::test]
async fn an_approval_is_used_once_however_many_race_for_it() {
    let (store, db) = store("use_race").await;
    let cluster = Cluster::shared();
    let other = PgStore::connect(cluster.settings(&db, "n2")).await.unwrap();
    for round in 0..5 {
        let mut r = request(1_000 + round, "DELETE FROM a");
        approve(&mut r, "dba-1", 2_000);
        store.save_approval(&r).await.unwrap();
        let gate = Arc::new(tokio::sync::Barrier::new(8));
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let s = if i % 2 == 0 {
                    store.clone()
                } else {
                    other.clone()
                };
                let (id, gate) = (r.id.clone(), gate.clone());
                tokio::spawn(async move {
                    gate.wait().await;
                    s.use_approval(&id, Timestamp::from_unix_millis(3_000 + i))
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut used = 0;
        for t in tasks {
            used += usize::from(t.await.unwrap());
        }
        assert_eq!(used, 1, "round {round}");
        let stored = store.approval(&r.id).await.unwrap().unwrap();
        assert_eq!(stored.state, ApprovalState::Used);
        assert!(stored.used_at.is_some());
    }
}

#[tokio::test]
async fn approvals_changed_since_returns_the_changed_ones_by_the_servers_clock() {
    let (store, _) = store("changed_since").await;
    let pause = || tokio::time::sleep(Duration::from_millis(5));
    let mut a = request(1_000, "DELETE FROM a");
    let b = request(2_000, "DELETE FROM b");
    store.save_approval(&a).await.unwrap();
    pause().await;
    let (first, all) = changed_of(&store, None, 10).await;
    assert_eq!(all, vec![a.clone()]);
    // The server's clock: close to ours here.
    let skew = (first.unix_millis() - Timestamp::now().unix_millis()).abs();
    assert!(skew < 5_000, "server clock {first} vs ours: {skew} ms");
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
    pause().await;
    let (third, changed) = changed_of(&store, Some(second), 10).await;
    assert_eq!(changed, vec![a.clone()]);
    pause().await;
    assert!(store.use_approval(&a.id, Timestamp::now()).await.unwrap());
    let (_, changed) = changed_of(&store, Some(third), 10).await;
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].state, ApprovalState::Used);
    let (_, all) = changed_of(&store, None, 10).await;
    assert_eq!(
        all.iter().map(|r| &r.id).collect::<Vec<_>>(),
        [&b.id, &a.id],
        "oldest change first"
    );
    let (_, one) = changed_of(&store, None, 1).await;
    assert_eq!(one, vec![b]);
}

#[tokio::test]
async fn sensitive_columns_are_stored_once_until_removed() {
    let (store, _) = store("sensitive").await;
    let column = |id: &str, table: &str, at: i64| SensitiveColumn {
        id: id.into(),
        connection: "app-db".into(),
        schema: "public".into(),
        table: table.into(),
        column: "card".into(),
        detector: "pan".into(),
        found_by: FoundBy::Query,
        found_for: Some("alice".into()),
        session: Some(SessionId::new()),
        sampled: None,
        found_at: Timestamp::from_unix_millis(at),
    };
    let a = column("c1", "customers", 1_000);
    let b = column("c2", "orders", 2_000);
    store.save_sensitive_column(&a).await.unwrap();
    store.save_sensitive_column(&b).await.unwrap();
    // The same column found again: kept once.
    store
        .save_sensitive_column(&column("c3", "customers", 3_000))
        .await
        .unwrap();
    assert_eq!(
        store.list_sensitive_columns().await.unwrap(),
        vec![a.clone(), b.clone()]
    );
    store
        .remove_sensitive_column("c1", Timestamp::from_unix_millis(4_000))
        .await
        .unwrap();
    assert_eq!(
        store.list_sensitive_columns().await.unwrap(),
        vec![b.clone()]
    );
    // Removed: found again, it is stored anew.
    let again = column("c4", "customers", 5_000);
    store.save_sensitive_column(&again).await.unwrap();
    assert_eq!(
        store.list_sensitive_columns().await.unwrap(),
        vec![b, again]
    );
}

/// Moves the heartbeats of `ids` an hour into the past (the store stamps
/// heartbeats with its own clock, so silence is made here).
async fn backdate(cluster: &Cluster, db: &str, ids: &[&str]) {
    let mut conn = cluster.connect(db).await;
    for id in ids {
        sqlx::query("UPDATE nodes SET heartbeat_at = heartbeat_at - 3600000 WHERE id = $1")
            .bind(id)
            .execute(&mut conn)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn nodes_heartbeat_stop_and_a_silent_ones_sessions_end_once() {
    let (n1, db) = store("nodes").await;
    let cluster = Cluster::shared();
    let n2 = PgStore::connect(cluster.settings(&db, "n2")).await.unwrap();
    let n3 = PgStore::connect(cluster.settings(&db, "n3")).await.unwrap();
    assert_eq!(n2.node_id(), "n2");
    assert!(n1.node_heartbeat(&node("n2", 1)).await.is_err());
    let before = Timestamp::now();
    assert_eq!(n1.node_heartbeat(&node("n1", 10_000)).await.unwrap(), None);
    n2.node_heartbeat(&node("n2", 5_000)).await.unwrap();
    n3.node_heartbeat(&node("n3", 5_000)).await.unwrap();
    n3.node_stopped(Timestamp::from_unix_millis(6_000))
        .await
        .unwrap();
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
    // Heartbeats carry the store's clock, not the node's.
    let listed = n1.list_nodes().await.unwrap();
    assert!(listed[0].heartbeat_at >= Timestamp::from_unix_millis(before.unix_millis() - 60_000));

    backdate(cluster, &db, &["n2", "n3"]).await;
    // Silent for an hour: not for two.
    assert!(n1
        .end_sessions_of_silent_nodes(Duration::from_secs(7_200))
        .await
        .unwrap()
        .is_empty());
    let lost = n1
        .end_sessions_of_silent_nodes(Duration::from_secs(600))
        .await
        .unwrap();
    assert_eq!(lost.len(), 1, "{lost:?}");
    assert_eq!((lost[0].id.as_str(), lost[0].sessions_ended), ("n2", 1));
    assert!(n1
        .end_sessions_of_silent_nodes(Duration::from_secs(600))
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
        detail.contains("node n2 stopped heartbeating at") && detail.contains("ended by node n1"),
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
    assert_eq!(nodes.len(), 3);
    assert_eq!(
        (nodes[0].id.as_str(), nodes[0].started_at),
        ("n1", node("n1", 10_000).started_at)
    );
    assert_eq!(
        nodes[1].lost.as_ref().map(|(_, by)| by.as_str()),
        Some("n1")
    );
    assert_eq!(
        nodes[2].stopped_at,
        Some(Timestamp::from_unix_millis(6_000))
    );
    // n2 heartbeats again: alive (and told it was taken for lost), its
    // ended session stays ended.
    let cleared = n2.node_heartbeat(&node("n2", 21_000)).await.unwrap();
    assert_eq!(cleared.map(|(_, by)| by), Some("n1".to_string()));
    assert_eq!(n1.list_nodes().await.unwrap()[1].lost, None);
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

#[tokio::test]
async fn a_restarted_node_ends_its_earlier_runs_open_sessions() {
    let (n1, _db) = store("earlier_runs").await;
    let old = session_start(2_000);
    let current = session_start(4_000);
    n1.record_session_start(&old).await.unwrap();
    n1.record_session_start(&current).await.unwrap();
    assert_eq!(
        n1.end_sessions_of_earlier_runs(Timestamp::from_unix_millis(3_000))
            .await
            .unwrap(),
        1
    );
    let e = n1
        .session(old.id)
        .await
        .unwrap()
        .unwrap()
        .summary
        .end
        .unwrap();
    assert_eq!(e.reason, SessionEndReason::NodeLost);
    assert!(e.detail.unwrap().contains("restarted"));
    assert!(n1
        .session(current.id)
        .await
        .unwrap()
        .unwrap()
        .summary
        .end
        .is_none());
}

#[tokio::test]
async fn nodes_racing_to_end_a_silent_nodes_sessions_count_each_once() {
    let (a, db) = store("silent_race").await;
    let cluster = Cluster::shared();
    let b = PgStore::connect(cluster.settings(&db, "n2")).await.unwrap();
    a.node_heartbeat(&node("n1", 100_000)).await.unwrap();
    b.node_heartbeat(&node("n2", 100_000)).await.unwrap();
    // Twenty silent nodes with three open sessions each.
    let mut expected = Vec::new();
    let mut ids = Vec::new();
    for i in 0..20 {
        let id = format!("silent-{i:02}");
        let s = PgStore::connect(cluster.settings(&db, &id)).await.unwrap();
        s.node_heartbeat(&node(&id, 1_000 + i)).await.unwrap();
        for k in 0..3 {
            s.record_session_start(&session_start(500 + k))
                .await
                .unwrap();
        }
        s.close().await;
        expected.push((id.clone(), 3));
        ids.push(id);
    }
    let silent: Vec<&str> = ids.iter().map(String::as_str).collect();
    backdate(cluster, &db, &silent).await;
    let (ra, rb) = tokio::join!(
        a.end_sessions_of_silent_nodes(Duration::from_secs(600)),
        b.end_sessions_of_silent_nodes(Duration::from_secs(600))
    );
    let mut all: Vec<(String, u64)> = ra
        .unwrap()
        .into_iter()
        .chain(rb.unwrap())
        .map(|n| (n.id, n.sessions_ended))
        .collect();
    all.sort();
    assert_eq!(
        all, expected,
        "every silent node taken once, by one of them"
    );
    let mut conn = cluster.connect(&db).await;
    let open: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE ended_at IS NULL")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(open, 0);
}

/// Waits up to a second for `changes` to move past what it has seen.
async fn woken(changes: &mut tokio::sync::watch::Receiver<u64>) -> bool {
    tokio::time::timeout(Duration::from_secs(1), changes.changed())
        .await
        .is_ok_and(|r| r.is_ok())
}

#[tokio::test]
async fn another_nodes_changes_wake_this_one() {
    let (store, db) = store("changes").await;
    let other = PgStore::connect(Cluster::shared().settings(&db, "n2"))
        .await
        .unwrap();
    let mut changes = store.changes().unwrap();
    changes.borrow_and_update();
    let t = TokenRecord {
        id: TokenId("aa".into()),
        identity: "ci".into(),
        groups: vec![],
        secret_hash: "00".into(),
        created_at: Timestamp::from_unix_millis(1),
        expires_at: Timestamp::from_unix_millis(2),
        revoked_at: None,
        ssh_key: None,
    };
    other.insert_token(&t).await.unwrap();
    other.revoke_token(&t.id, Timestamp::now()).await.unwrap();
    assert!(woken(&mut changes).await, "a revocation wakes");
    let mut r = request(1_000, "DELETE FROM a");
    other.save_approval(&r).await.unwrap();
    assert!(woken(&mut changes).await, "a new approval wakes");
    approve(&mut r, "dba", 2_000);
    assert!(other
        .update_approval(&r, ApprovalState::Pending, 0)
        .await
        .unwrap());
    assert!(woken(&mut changes).await, "a vote wakes");
    assert!(other.use_approval(&r.id, Timestamp::now()).await.unwrap());
    assert!(woken(&mut changes).await, "a use wakes");
    // A refused write sends nothing.
    assert!(!other.use_approval(&r.id, Timestamp::now()).await.unwrap());
    assert!(!woken(&mut changes).await);
}

/// The backends of database `db` that are gatehouse's, listening or not.
async fn gatehouse_backends(db: &str, listening: bool) -> Vec<i32> {
    let mut conn = Cluster::shared().connect("postgres").await;
    let pids = sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity WHERE datname = $1 \
         AND application_name = 'gatehouse' AND (NOT $2 OR query LIKE 'LISTEN%')",
    )
    .bind(db)
    .bind(listening)
    .fetch_all(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    pids
}

#[tokio::test]
async fn the_listener_reconnects_and_says_changes_may_have_been_missed() {
    let (store, db) = store("reconnect").await;
    let mut changes = store.changes().unwrap();
    changes.borrow_and_update();
    let listeners = gatehouse_backends(&db, true).await;
    assert_eq!(listeners.len(), 1, "{listeners:?}");
    let mut conn = Cluster::shared().connect("postgres").await;
    sqlx::query("SELECT pg_terminate_backend($1)")
        .bind(listeners[0])
        .execute(&mut conn)
        .await
        .unwrap();
    // Back after the first backoff (1 s), counting one change.
    let back = tokio::time::timeout(Duration::from_secs(5), changes.changed()).await;
    assert!(back.is_ok_and(|r| r.is_ok()), "no wake after reconnecting");
    let listeners = gatehouse_backends(&db, true).await;
    assert_eq!(listeners.len(), 1, "{listeners:?}");
    // And it hears notifications again.
    changes.borrow_and_update();
    store
        .save_approval(&request(1, "DELETE FROM a"))
        .await
        .unwrap();
    assert!(woken(&mut changes).await);
}

#[tokio::test]
async fn closing_or_dropping_the_store_ends_its_connections() {
    let cluster = Cluster::shared();
    let (store, db) = store("close").await;
    store.list_tokens().await.unwrap();
    assert!(!gatehouse_backends(&db, false).await.is_empty());
    store.close().await;
    let gone = async {
        while !gatehouse_backends(&db, false).await.is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), gone)
        .await
        .expect("connections still open after close()");

    let dropped = PgStore::connect(cluster.settings(&db, "n2")).await.unwrap();
    dropped.list_tokens().await.unwrap();
    assert!(!gatehouse_backends(&db, true).await.is_empty());
    drop(dropped);
    let gone = async {
        while !gatehouse_backends(&db, false).await.is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), gone)
        .await
        .expect("connections still open after the store was dropped");
}

#[tokio::test]
async fn an_empty_database_is_set_up_at_connect_even_by_nodes_starting_together() {
    let cluster = Cluster::shared();
    let db = cluster.database("fresh").await;
    let settings = cluster.settings(&db, "n1");
    assert_eq!(
        PgStore::schema_state(&settings).await.unwrap(),
        SchemaState::Empty
    );
    let starts: Vec<_> = (0..6)
        .map(|i| {
            let s = cluster.settings(&db, &format!("n{i}"));
            tokio::spawn(PgStore::connect(s))
        })
        .collect();
    for s in starts {
        s.await.unwrap().unwrap();
    }
    assert_eq!(
        PgStore::schema_state(&settings).await.unwrap(),
        SchemaState::Current
    );
    assert_eq!(PgStore::migrate(&settings).await.unwrap(), (KNOWN, KNOWN));
    let mut conn = cluster.connect(&db).await;
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        tables,
        [
            "_sqlx_migrations",
            "approvals",
            "evidence_checkpoints",
            "evidence_cosignatures",
            "evidence_entries",
            "evidence_keys",
            "nodes",
            "recordings",
            "sensitive_columns",
            "sessions",
            "statement_texts",
            "statements",
            "tokens"
        ]
    );
}

#[tokio::test]
async fn a_store_migrated_by_a_newer_gatehouse_is_refused() {
    let (store, db) = store("newer").await;
    store.close().await;
    let cluster = Cluster::shared();
    let mut conn = cluster.connect(&db).await;
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999, 'from the future', true, '\\x00', 1)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let settings = cluster.settings(&db, "n1");
    assert_eq!(
        PgStore::schema_state(&settings).await.unwrap(),
        SchemaState::Newer {
            applied: 9999,
            known: KNOWN
        }
    );
    let err = PgStore::connect(settings.clone()).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, StoreError::Unavailable(_)), "{text}");
    assert!(
        text.contains("schema version 9999")
            && text.contains("newer gatehouse")
            && text.contains("upgrade this node"),
        "{text}"
    );
    let err = PgStore::migrate(&settings).await.unwrap_err().to_string();
    assert!(err.contains("newer gatehouse"), "{err}");
}

#[tokio::test]
async fn an_older_store_waits_for_store_migrate() {
    let cluster = Cluster::shared();
    let db = cluster.database("older").await;
    // A store whose migrations table is there but holds none of ours.
    let mut conn = cluster.connect(&db).await;
    sqlx::query(
        "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, \
         installed_on TIMESTAMPTZ NOT NULL DEFAULT now(), success BOOLEAN NOT NULL, \
         checksum BYTEA NOT NULL, execution_time BIGINT NOT NULL)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let settings = cluster.settings(&db, "n1");
    assert_eq!(
        PgStore::schema_state(&settings).await.unwrap(),
        SchemaState::Older {
            applied: 0,
            known: KNOWN
        }
    );
    let text = PgStore::connect(settings.clone())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        text.contains(&format!("the store at {}", cluster.url(&db)))
            && text.contains(&format!("schema version 0; this gatehouse needs {KNOWN}"))
            && text.contains("gatehouse store migrate"),
        "{text}"
    );
    // From any task (the futures are Send).
    let migrating = settings.clone();
    let migrated = tokio::spawn(async move { PgStore::migrate(&migrating).await });
    assert_eq!(migrated.await.unwrap().unwrap(), (0, KNOWN));
    let checking = settings.clone();
    let state = tokio::spawn(async move { PgStore::schema_state(&checking).await });
    assert_eq!(state.await.unwrap().unwrap(), SchemaState::Current);
    let store = PgStore::connect(settings).await.unwrap();
    assert!(store.list_tokens().await.unwrap().is_empty());
}

/// The PostgreSQL migrations, as the store embeds them.
static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations-postgres");

#[tokio::test]
async fn a_store_at_the_first_migration_waits_for_store_migrate_then_has_the_second() {
    let cluster = Cluster::shared();
    let db = cluster.database("first_only").await;
    // The store as the first gatehouse with a shared store left it.
    let first = sqlx::migrate::Migrator {
        migrations: MIGRATIONS
            .migrations
            .iter()
            .filter(|m| m.version == 1)
            .cloned()
            .collect::<Vec<_>>()
            .into(),
        ..sqlx::migrate::Migrator::DEFAULT
    };
    let mut conn = cluster.connect(&db).await;
    first.run(&mut conn).await.unwrap();
    let settings = cluster.settings(&db, "n1");
    assert_eq!(
        PgStore::schema_state(&settings).await.unwrap(),
        SchemaState::Older {
            applied: 1,
            known: 2
        }
    );
    let text = PgStore::connect(settings.clone())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("schema version 1; this gatehouse needs 2")
            && text.contains("gatehouse store migrate"),
        "{text}"
    );
    assert_eq!(PgStore::migrate(&settings).await.unwrap(), (1, 2));
    assert_eq!(
        PgStore::schema_state(&settings).await.unwrap(),
        SchemaState::Current
    );
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(versions, [1, 2]);
    let store = PgStore::connect(settings).await.unwrap();
    let replicas = store.evidence_replicas();
    replicas
        .replicate("n1", &[(1, b"e1".to_vec())])
        .await
        .unwrap();
    assert_eq!(replicas.replicated_through("n1").await.unwrap(), Some(1));
}

#[tokio::test]
async fn a_password_in_the_url_is_refused() {
    let cluster = Cluster::shared();
    let mut settings = cluster.settings("postgres", "n1");
    settings.url = format!(
        "postgres://gatehouse:{PASSWORD}@127.0.0.1:{}/postgres",
        cluster.port()
    );
    let text = PgStore::connect(settings).await.unwrap_err().to_string();
    assert!(
        text.contains("put the password in password_env or password_file, not in the url"),
        "{text}"
    );
    assert!(!text.contains(PASSWORD), "{text}");
}

#[tokio::test]
async fn a_wrong_password_is_unavailable_without_showing_it() {
    let cluster = Cluster::shared();
    let db = cluster.database("wrong_password").await;
    let mut settings = cluster.settings(&db, "n1");
    settings.password = Some("not-the-Password-42".into());
    let err = PgStore::connect(settings.clone()).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, StoreError::Unavailable(_)), "{text}");
    assert!(
        text.contains("cannot connect to the store at") && text.contains("password"),
        "{text}"
    );
    assert!(!text.contains("not-the-Password-42"), "{text}");
    assert!(!format!("{settings:?}").contains("not-the-Password-42"));
    settings.password = None;
    let text = PgStore::connect(settings).await.unwrap_err().to_string();
    assert!(text.contains("cannot connect"), "{text}");
}

#[tokio::test]
async fn verify_full_against_a_server_without_tls_fails_clearly() {
    let cluster = Cluster::shared();
    let db = cluster.database("tls").await;
    for tls in [StoreTls::VerifyFull, StoreTls::Require] {
        let mut settings = cluster.settings(&db, "n1");
        settings.tls = tls;
        let text = PgStore::connect(settings).await.unwrap_err().to_string();
        assert!(
            text.contains("cannot connect to the store at") && text.contains("TLS"),
            "{text}"
        );
    }
    // Prefer falls back to plain TCP.
    let mut settings = cluster.settings(&db, "n1");
    settings.tls = StoreTls::Prefer;
    PgStore::connect(settings).await.unwrap();
}

#[tokio::test]
async fn an_unreachable_store_is_unavailable() {
    let mut settings = Cluster::shared().settings("postgres", "n1");
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    settings.url = format!("postgres://gatehouse@127.0.0.1:{port}/postgres");
    let err = PgStore::connect(settings).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Unavailable(m) if m.contains("cannot connect")),
        "{err}"
    );
}

#[tokio::test]
async fn the_fixture_connection_is_its_own() {
    // The fixture's helper connections work (and the cluster is up).
    let mut conn: PgConnection = Cluster::shared().connect("postgres").await;
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(one, 1);
    assert!(Cluster::shared().dir().exists());
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
