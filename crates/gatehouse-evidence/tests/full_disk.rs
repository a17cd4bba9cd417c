//! The evidence log over the real SQLite store when commits fail for a
//! while (a full disk that frees up): write-ahead callers are refused, and
//! events recorded without waiting (statement results, session ends) are
//! kept and written once the store can take them, exactly once, in order.

use async_trait::async_trait;
use gatehouse_core::{AuditEvent, AuditTrail, EvidenceStore, LogRow, StoreError, StoredCheckpoint};
use gatehouse_evidence::{EvidenceLog, LogSettings, SigningKey};
use gatehouse_store::{Durability, SqliteEvidenceStore};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The real store, whose appends fail while `full` is set.
struct FullDisk {
    inner: SqliteEvidenceStore,
    full: AtomicBool,
}

#[async_trait]
impl EvidenceStore for FullDisk {
    fn append_blocking(
        &self,
        entries: &[(u64, Vec<u8>)],
        checkpoint: Option<StoredCheckpoint>,
    ) -> Result<(), StoreError> {
        if self.full.load(Ordering::Acquire) {
            return Err(StoreError::Unavailable("database or disk is full".into()));
        }
        self.inner.append_blocking(entries, checkpoint)
    }
    async fn entries_after(
        &self,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Vec<LogRow>, StoreError> {
        self.inner.entries_after(after, limit).await
    }
    async fn entries_from(&self, first: u64, limit: usize) -> Result<Vec<LogRow>, StoreError> {
        self.inner.entries_from(first, limit).await
    }
    async fn checkpoints(&self) -> Result<Vec<String>, StoreError> {
        self.inner.checkpoints().await
    }
    async fn last_seq(&self) -> Result<Option<u64>, StoreError> {
        self.inner.last_seq().await
    }
    async fn last_position(&self) -> Result<Option<i64>, StoreError> {
        self.inner.last_position().await
    }
    async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        self.inner.latest_checkpoint().await
    }
}

#[tokio::test]
async fn recorded_events_outlive_a_full_disk_and_are_written_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FullDisk {
        inner: SqliteEvidenceStore::open(&dir.path().join("e.db"), Durability::Os)
            .await
            .unwrap(),
        full: AtomicBool::new(false),
    });
    let key = SigningKey::generate("gatehouse.test/full").unwrap();
    let settings = LogSettings {
        node: "full".into(),
        origin: "gatehouse.test/full".into(),
        checkpoint_every: 1000,
        checkpoint_interval: Duration::from_secs(3600),
        witnesses: Vec::new(),
    };
    let (log, task) = EvidenceLog::open(store.clone(), key, settings)
        .await
        .unwrap();
    log.append(vec![AuditEvent::config_loaded("before.toml", "00")])
        .await
        .unwrap();

    // The disk fills: a result is recorded, then a write-ahead append fails
    // (its caller is refused) and takes the recorded event down with it.
    store.full.store(true, Ordering::Release);
    log.record(vec![AuditEvent::gateway_started("result-1", &[])])
        .await
        .unwrap();
    assert!(log
        .append(vec![AuditEvent::config_loaded("refused.toml", "01")])
        .await
        .is_err());
    log.record(vec![AuditEvent::gateway_started("result-2", &[])])
        .await
        .unwrap();
    assert!(log
        .append(vec![AuditEvent::config_loaded("refused-too.toml", "02")])
        .await
        .is_err());

    // Space returns: the next commit writes what was kept, once, in order.
    store.full.store(false, Ordering::Release);
    log.append(vec![AuditEvent::config_loaded("after.toml", "03")])
        .await
        .unwrap();
    log.close().await;
    task.await.unwrap();
    let texts: Vec<String> = store
        .entries_after(None, usize::MAX)
        .await
        .unwrap()
        .iter()
        .map(|r| String::from_utf8_lossy(&r.bytes).into_owned())
        .collect();
    let order: Vec<&str> = texts
        .iter()
        .filter_map(|t| {
            [
                "before.toml",
                "result-1",
                "result-2",
                "after.toml",
                "refused",
            ]
            .into_iter()
            .find(|m| t.contains(m))
        })
        .collect();
    assert_eq!(
        order,
        ["before.toml", "result-1", "result-2", "after.toml"],
        "the refused appends are not in the log; the results are, once"
    );
    // The log still verifies end to end.
    let verify = gatehouse_evidence::verify(
        &store
            .entries_after(None, usize::MAX)
            .await
            .unwrap()
            .into_iter()
            .map(|r| gatehouse_evidence::StoredEntry {
                position: r.position,
                bytes: r.bytes,
            })
            .collect::<Vec<_>>(),
        &[],
        &SigningKey::generate("gatehouse.test/other")
            .unwrap()
            .verifier(),
    );
    assert!(verify.is_clean(), "{:?}", verify.findings);
}
