//! The nodes' evidence logs replicated in the shared store, and their
//! witness cosignatures, against a real PostgreSQL (`common::pg`): copies
//! stored exactly once in any order, checkpoints and cosignatures by size,
//! keys never replaced, and a copy read back as an evidence store.

// Shared by the test binaries: each uses part of it.
#[allow(dead_code)]
mod common;

use common::pg::Cluster;
use gatehouse_core::{EvidenceStore, Store, StoreError, StoredCheckpoint};
use gatehouse_store::{EvidenceReplicas, PgStore};
use std::time::Duration;

/// A store on a new database of the shared cluster, for node `n1`.
async fn store(name: &str) -> (PgStore, String) {
    let cluster = Cluster::shared();
    let db = cluster.database(name).await;
    let store = PgStore::connect(cluster.settings(&db, "n1")).await.unwrap();
    (store, db)
}

/// Entries numbered `seqs`, each with bytes naming node and number.
fn rows(node: &str, seqs: impl IntoIterator<Item = u64>) -> Vec<(u64, Vec<u8>)> {
    seqs.into_iter()
        .map(|s| (s, format!("{node}-entry-{s}").into_bytes()))
        .collect()
}

async fn all_entries(replicas: &EvidenceReplicas, node: &str) -> Vec<(u64, Vec<u8>)> {
    replicas.entries(node, 0, usize::MAX).await.unwrap()
}

#[tokio::test]
async fn entries_are_stored_once_whatever_the_order_or_retries() {
    let (store, db) = store("replicate").await;
    let replicas = store.evidence_replicas();
    assert_eq!(replicas.replicated_through("n1").await.unwrap(), None);
    replicas.replicate("n1", &rows("n1", 1..=5)).await.unwrap();
    // A batch retried after a lost commit: nothing twice, no error.
    replicas.replicate("n1", &rows("n1", 1..=5)).await.unwrap();
    // Out of order, overlapping, and with a number twice in one batch.
    replicas
        .replicate("n1", &rows("n1", [9, 7, 8, 7, 4]))
        .await
        .unwrap();
    replicas.replicate("n1", &rows("n1", [6])).await.unwrap();
    replicas.replicate("n1", &[]).await.unwrap();
    replicas.replicate("n2", &rows("n2", [1, 2])).await.unwrap();
    assert_eq!(replicas.replicated_through("n1").await.unwrap(), Some(9));
    assert_eq!(replicas.replicated_through("n2").await.unwrap(), Some(2));
    assert_eq!(replicas.replicated_through("n3").await.unwrap(), None);
    assert_eq!(all_entries(&replicas, "n1").await, rows("n1", 1..=9));
    assert_eq!(all_entries(&replicas, "n2").await, rows("n2", 1..=2));
    assert_eq!(
        replicas.entries("n1", 4, 2).await.unwrap(),
        rows("n1", [4, 5])
    );
    assert!(replicas.entries("n1", 10, 5).await.unwrap().is_empty());
    assert!(replicas
        .entries("n1", u64::MAX, 5)
        .await
        .unwrap()
        .is_empty());
    // The first copy of a number stays.
    replicas
        .replicate("n1", &[(3, b"other".to_vec())])
        .await
        .unwrap();
    assert_eq!(replicas.entries("n1", 3, 1).await.unwrap(), rows("n1", [3]));

    let mut conn = Cluster::shared().connect(&db).await;
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM evidence_entries")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(count, 11);
}

#[tokio::test]
async fn a_large_batch_is_split_and_a_number_too_large_is_refused() {
    let (store, _) = store("replicate_large").await;
    let replicas = store.evidence_replicas();
    // More rows than one INSERT takes, from any task (the future is Send).
    let batch = rows("n1", 1..=3_000);
    let copying = replicas.clone();
    let sent = batch.clone();
    tokio::spawn(async move { copying.replicate("n1", &sent).await })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(all_entries(&replicas, "n1").await, batch);

    let err = replicas
        .replicate("n2", &[(1, vec![1]), (u64::MAX, vec![2])])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Malformed(_)), "{err}");
    assert_eq!(replicas.replicated_through("n2").await.unwrap(), None);
    let err = replicas
        .publish_checkpoint("n2", u64::MAX, "note")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Malformed(_)), "{err}");
}

#[tokio::test]
async fn checkpoints_are_kept_by_size_and_the_newest_is_each_nodes_largest() {
    let (store, db) = store("checkpoints").await;
    let replicas = store.evidence_replicas();
    assert!(replicas.newest_checkpoints().await.unwrap().is_empty());
    assert!(replicas.checkpoints("n1").await.unwrap().is_empty());
    let before = gatehouse_core::Timestamp::now().unix_millis();
    // The newest are listed for the nodes that published a key.
    replicas
        .publish_key("n1", "gatehouse/n1+01234567+AAAA")
        .await
        .unwrap();
    replicas
        .publish_key("n2", "gatehouse/n2+01234567+AAAB")
        .await
        .unwrap();
    for (node, size) in [("n1", 5), ("n1", 10), ("n1", 7), ("n2", 3)] {
        replicas
            .publish_checkpoint(node, size, &format!("{node} at {size}"))
            .await
            .unwrap();
    }
    // Published again (a retry, or a later note of the same size): the first stays.
    replicas
        .publish_checkpoint("n1", 10, "n1 at 10 again")
        .await
        .unwrap();
    assert_eq!(
        replicas.checkpoints("n1").await.unwrap(),
        [
            (5, "n1 at 5".to_string()),
            (7, "n1 at 7".to_string()),
            (10, "n1 at 10".to_string())
        ]
    );
    assert_eq!(
        replicas.newest_checkpoints().await.unwrap(),
        [
            ("n1".to_string(), 10, "n1 at 10".to_string()),
            ("n2".to_string(), 3, "n2 at 3".to_string())
        ]
    );
    // published_at is the store's clock (the same machine's here).
    let mut conn = Cluster::shared().connect(&db).await;
    let (first, last): (i64, i64) =
        sqlx::query_as("SELECT MIN(published_at), MAX(published_at) FROM evidence_checkpoints")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    let after = gatehouse_core::Timestamp::now().unix_millis();
    assert!(
        before - 1_000 <= first && last <= after + 1_000,
        "{first} {last}"
    );
}

#[tokio::test]
async fn cosignatures_are_kept_once_and_the_latest_is_the_largest() {
    let (store, db) = store("cosign").await;
    let replicas = store.evidence_replicas();
    assert_eq!(replicas.latest_cosignature("n1", "n2").await.unwrap(), None);
    replicas
        .cosign("n1", 10, "n2", "n2 cosigns n1 at 10", b"state-10")
        .await
        .unwrap();
    replicas
        .cosign("n1", 5, "n2", "n2 cosigns n1 at 5", b"state-5")
        .await
        .unwrap();
    replicas
        .cosign("n1", 10, "n3", "n3 cosigns n1 at 10", b"n3-state")
        .await
        .unwrap();
    replicas
        .cosign("n2", 20, "n1", "n1 cosigns n2 at 20", b"n1-state")
        .await
        .unwrap();
    // Again: the first stays.
    replicas
        .cosign("n1", 10, "n2", "again", b"other")
        .await
        .unwrap();
    assert_eq!(
        replicas.latest_cosignature("n1", "n2").await.unwrap(),
        Some((10, b"state-10".to_vec()))
    );
    assert_eq!(
        replicas.latest_cosignature("n1", "n3").await.unwrap(),
        Some((10, b"n3-state".to_vec()))
    );
    assert_eq!(replicas.latest_cosignature("n1", "n1").await.unwrap(), None);
    assert_eq!(replicas.latest_cosignature("n3", "n2").await.unwrap(), None);
    let s = |size: u64, cosigner: &str, note: &str| (size, cosigner.to_string(), note.to_string());
    assert_eq!(
        replicas.cosignatures("n1").await.unwrap(),
        [
            s(5, "n2", "n2 cosigns n1 at 5"),
            s(10, "n2", "n2 cosigns n1 at 10"),
            s(10, "n3", "n3 cosigns n1 at 10")
        ]
    );
    assert_eq!(
        replicas.cosignatures("n2").await.unwrap(),
        [s(20, "n1", "n1 cosigns n2 at 20")]
    );
    assert!(replicas.cosignatures("n3").await.unwrap().is_empty());
    let mut conn = Cluster::shared().connect(&db).await;
    let unsigned: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM evidence_cosignatures WHERE signed_at <= 0")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(unsigned, 0);
}

#[tokio::test]
async fn a_nodes_key_is_published_once_and_never_replaced() {
    let (store, _) = store("keys").await;
    let replicas = store.evidence_replicas();
    assert!(replicas.node_keys().await.unwrap().is_empty());
    replicas.publish_key("n2", "n2+key").await.unwrap();
    replicas.publish_key("n1", "n1+key").await.unwrap();
    replicas.publish_key("n1", "n1+key").await.unwrap();
    let err = replicas.publish_key("n1", "other+key").await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, StoreError::Malformed(_)), "{text}");
    assert!(
        text.contains("node n1's evidence key in the store")
            && text.contains("differs from this node's")
            && text.contains("two nodes share"),
        "{text}"
    );
    assert_eq!(
        replicas.node_keys().await.unwrap(),
        [
            ("n1".to_string(), "n1+key".to_string()),
            ("n2".to_string(), "n2+key".to_string())
        ]
    ); // Another node with n2's key, or with a key of the same name (origin):
       // refused, so no node's signature passes for another's.
    for key in ["n2+key", "n2+otherkey"] {
        let err = replicas
            .publish_key("n3", key)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("node n2 already signs with this evidence key or origin"),
            "{err}"
        );
    }
}

#[tokio::test]
async fn a_replica_log_reads_as_an_evidence_store_and_refuses_appends() {
    let (store, _) = store("replica_log").await;
    let replicas = store.evidence_replicas();
    let empty = replicas.replica_log("n1");
    assert!(empty.entries_after(None, 10).await.unwrap().is_empty());
    assert_eq!(empty.last_seq().await.unwrap(), None);
    assert_eq!(empty.last_position().await.unwrap(), None);
    assert!(empty.checkpoints().await.unwrap().is_empty());

    // Copied in batches out of order, beside another node's log.
    replicas
        .replicate("n1", &rows("n1", 12..=23))
        .await
        .unwrap();
    replicas.replicate("n1", &rows("n1", 1..=11)).await.unwrap();
    replicas.replicate("n2", &rows("n2", 1..=30)).await.unwrap();
    for size in [23, 5, 11] {
        replicas
            .publish_checkpoint("n1", size, &format!("n1 at {size}"))
            .await
            .unwrap();
    }
    replicas
        .publish_checkpoint("n2", 30, "n2 at 30")
        .await
        .unwrap();

    let log = replicas.replica_log("n1");
    assert_eq!(log.node(), "n1");
    // Page by page, as verification reads it.
    let mut read = Vec::new();
    let mut after = None;
    loop {
        let page = log.entries_after(after, 5).await.unwrap();
        assert!(page.len() <= 5);
        let Some(last) = page.last() else { break };
        after = Some(last.position);
        read.extend(page);
    }
    assert!(read.iter().all(|r| r.position == r.seq));
    let read: Vec<(u64, Vec<u8>)> = read.into_iter().map(|r| (r.seq as u64, r.bytes)).collect();
    assert_eq!(read, rows("n1", 1..=23));
    let positions = |rows: Vec<gatehouse_core::LogRow>| -> Vec<i64> {
        rows.into_iter().map(|r| r.position).collect()
    };
    assert_eq!(
        positions(log.entries_after(Some(-7), 2).await.unwrap()),
        [1, 2]
    );
    assert_eq!(
        positions(log.entries_after(Some(22), 10).await.unwrap()),
        [23]
    );
    assert!(log
        .entries_after(Some(i64::MAX), 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        positions(log.entries_from(10, 3).await.unwrap()),
        [10, 11, 12]
    );
    assert_eq!(
        log.checkpoints().await.unwrap(),
        ["n1 at 5", "n1 at 11", "n1 at 23"]
    );
    assert_eq!(log.latest_checkpoint().await.unwrap(), None);
    assert_eq!(log.last_seq().await.unwrap(), Some(23));
    assert_eq!(log.last_position().await.unwrap(), Some(23));

    let err = log
        .append_blocking(
            &rows("n1", [24]),
            Some(StoredCheckpoint {
                size: 24,
                note: "n1 at 24".into(),
                state: vec![],
            }),
        )
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Unavailable(m) if m.contains("a replica is read-only")),
        "{err}"
    );
    assert_eq!(log.last_seq().await.unwrap(), Some(23));
}

/// Waits up to a second for `changes` to move past what it has seen.
async fn woken(changes: &mut tokio::sync::watch::Receiver<u64>) -> bool {
    tokio::time::timeout(Duration::from_secs(1), changes.changed())
        .await
        .is_ok_and(|r| r.is_ok())
}

#[tokio::test]
async fn a_published_checkpoint_wakes_the_other_nodes() {
    let (store, db) = store("checkpoint_changes").await;
    let other = PgStore::connect(Cluster::shared().settings(&db, "n2"))
        .await
        .unwrap();
    let mut changes = store.changes().unwrap();
    changes.borrow_and_update();
    let replicas = other.evidence_replicas();
    replicas
        .publish_checkpoint("n2", 4, "n2 at 4")
        .await
        .unwrap();
    assert!(woken(&mut changes).await, "a new checkpoint wakes");
    // One already published is no news; copies and cosignatures are none.
    replicas
        .publish_checkpoint("n2", 4, "n2 at 4")
        .await
        .unwrap();
    replicas.replicate("n2", &rows("n2", 1..=4)).await.unwrap();
    replicas
        .cosign("n1", 3, "n2", "cosigned", b"s")
        .await
        .unwrap();
    assert!(!woken(&mut changes).await);
}

#[tokio::test]
async fn a_recording_kept_by_one_node_is_read_by_another() {
    let (n1, db) = store("recordings").await;
    let n2 = PgStore::connect(Cluster::shared().settings(&db, "n2"))
        .await
        .unwrap();
    let cast = b"{\"version\": 2}\n[0.1, \"o\", \"hello\"]\n".to_vec();
    assert_eq!(n2.recording("s-1.cast").await.unwrap(), None);
    n1.keep_recording("s-1.cast", "abc", &cast).await.unwrap();
    // Kept once: a second copy (a retry) changes nothing.
    n1.keep_recording("s-1.cast", "abc", b"other")
        .await
        .unwrap();
    assert_eq!(n2.recording("s-1.cast").await.unwrap(), Some(cast));
    assert_eq!(n1.kept_recordings().await.unwrap(), ["s-1.cast"]);
    assert!(n2.kept_recordings().await.unwrap().is_empty());
}

#[tokio::test]
async fn an_auditor_reads_the_copies_without_joining_the_store() {
    let cluster = Cluster::shared();
    // An empty database: nothing to read, and nothing is set up in it.
    let empty = cluster.database("reader_empty").await;
    let err = PgStore::evidence_reader(&cluster.settings(&empty, "auditor"))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("is empty: no node has used it yet"), "{err}");
    assert_eq!(
        PgStore::schema_state(&cluster.settings(&empty, "auditor"))
            .await
            .unwrap(),
        gatehouse_store::SchemaState::Empty
    );
    // A store a node uses: the auditor reads what the node copied.
    let (store, db) = store("reader").await;
    store
        .evidence_replicas()
        .publish_key("n1", "gatehouse/n1+01234567+AAAA")
        .await
        .unwrap();
    let reader = PgStore::evidence_reader(&cluster.settings(&db, "auditor"))
        .await
        .unwrap();
    assert_eq!(reader.node_keys().await.unwrap().len(), 1);
}
