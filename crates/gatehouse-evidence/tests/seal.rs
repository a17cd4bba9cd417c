//! `EvidenceLog::seal`: a checkpoint on demand over the real SQLite store,
//! long before `checkpoint_interval` would sign one.

use gatehouse_core::{AuditEvent, AuditTrail, EvidenceStore};
use gatehouse_evidence::{EvidenceLog, LogSettings, SigningKey};
use gatehouse_store::{Durability, SqliteEvidenceStore};
use std::sync::Arc;
use std::time::Duration;

#[tokio::test]
async fn seal_signs_a_checkpoint_over_every_entry_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteEvidenceStore::open(&dir.path().join("e.db"), Durability::Os)
        .await
        .unwrap();
    let store = Arc::new(store);
    let key = SigningKey::generate("gatehouse.test/seal").unwrap();
    let verifier = key.verifier();
    let settings = LogSettings {
        node: "seal".into(),
        origin: "gatehouse.test/seal".into(),
        checkpoint_every: 1000,
        checkpoint_interval: Duration::from_secs(3600),
        witnesses: Vec::new(),
    };
    let (log, task) = EvidenceLog::open(store.clone(), key, settings)
        .await
        .unwrap();
    assert_eq!(
        log.seal().await.unwrap(),
        0,
        "an empty log has nothing to sign"
    );
    assert!(store.checkpoints().await.unwrap().is_empty());

    log.append(vec![AuditEvent::config_loaded("a.toml", "00")])
        .await
        .unwrap();
    // Recorded without waiting: sealing writes it first.
    log.record(vec![AuditEvent::gateway_started("test", &[])])
        .await
        .unwrap();
    assert_eq!(log.seal().await.unwrap(), 2);
    let notes = store.checkpoints().await.unwrap();
    assert_eq!(notes.len(), 1);
    assert_eq!(verifier.open(&notes[0]).unwrap().size, 2);

    // Nothing new: no second checkpoint.
    assert_eq!(log.seal().await.unwrap(), 2);
    assert_eq!(store.checkpoints().await.unwrap().len(), 1);

    log.close().await;
    task.await.unwrap();
    assert!(log.seal().await.is_err(), "a stopped writer says so");
}
