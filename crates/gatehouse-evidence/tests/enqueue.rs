//! Queued appends (`AuditTrail::enqueue`): what tells a relay holding a
//! read's answer when its events are durable. They keep their order with
//! every other append, and a log set to write reads ahead answers only once
//! they are in the store.

use gatehouse_core::{AuditEvent, AuditTrail, EvidenceStore};
use gatehouse_evidence::note::SigningKey;
use gatehouse_evidence::{EvidenceLog, LogSettings};
use gatehouse_store::{Durability, SqliteEvidenceStore};
use std::sync::Arc;
use std::time::Duration;

fn settings() -> LogSettings {
    LogSettings {
        node: "enqueue".into(),
        origin: "gatehouse.test/enqueue".into(),
        checkpoint_every: 1000,
        checkpoint_interval: Duration::from_secs(3600),
        witnesses: Vec::new(),
    }
}

async fn open(dir: &tempfile::TempDir) -> (EvidenceLog, Arc<SqliteEvidenceStore>) {
    let store = Arc::new(
        SqliteEvidenceStore::open(&dir.path().join("evidence.db"), Durability::Os)
            .await
            .unwrap(),
    );
    let (log, _task) = EvidenceLog::open(
        store.clone(),
        SigningKey::generate("enqueue").unwrap(),
        settings(),
    )
    .await
    .unwrap();
    (log, store)
}

fn event(name: &str) -> AuditEvent {
    AuditEvent::config_loaded(name, "00")
}

#[tokio::test]
async fn queued_appends_become_durable_in_the_order_they_were_queued() {
    let dir = tempfile::tempdir().unwrap();
    let (log, store) = open(&dir).await;
    let mut pending = Vec::new();
    for i in 0..20 {
        pending.push(log.enqueue(vec![event(&format!("q{i}"))]).await.unwrap());
        // Waited appends in between keep their places.
        if i % 5 == 0 {
            log.append(vec![event(&format!("w{i}"))]).await.unwrap();
        }
    }
    for p in pending {
        p.durable().await.unwrap();
    }
    let rows = store.entries_from(0, 100).await.unwrap();
    let names: Vec<String> = rows
        .iter()
        .map(|r| String::from_utf8_lossy(&r.bytes).to_string())
        .filter_map(|text| {
            ["q", "w"].iter().find_map(|p| {
                (0..20)
                    .map(|i| format!("{p}{i}"))
                    .find(|n| text.contains(&format!("\"{n}\"")))
            })
        })
        .collect();
    let mut expected = Vec::new();
    for i in 0..20 {
        expected.push(format!("q{i}"));
        if i % 5 == 0 {
            expected.push(format!("w{i}"));
        }
    }
    assert_eq!(names, expected);
}

#[tokio::test]
async fn a_log_writing_reads_ahead_answers_a_queued_append_once_it_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let (log, store) = open(&dir).await;
    let log = log.writing_reads_ahead(true);
    let before = store.last_seq().await.unwrap();
    let pending = log.enqueue(vec![event("read")]).await.unwrap();
    // Already in the store when enqueue returns: nothing ran before it.
    let after = store.last_seq().await.unwrap();
    assert_eq!(after, Some(before.map_or(0, |s| s + 1)));
    pending.durable().await.unwrap();
}

#[tokio::test]
async fn a_stopped_log_fails_what_was_queued() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _store) = open(&dir).await;
    log.close().await;
    let queued = log.enqueue(vec![event("late")]).await;
    let failed = match queued {
        Err(e) => e,
        Ok(p) => p.durable().await.unwrap_err(),
    };
    assert!(failed.to_string().contains("stopped"), "{failed}");
}
