//! Restarting reads what came after the newest checkpoint, not the log:
//! a store that counts what is read shows the same reads for a log ten
//! times larger, the full read never happens, and the log still verifies.

use async_trait::async_trait;
use gatehouse_core::{AuditEvent, AuditTrail, EvidenceStore, LogRow, StoreError, StoredCheckpoint};
use gatehouse_evidence::note::SigningKey;
use gatehouse_evidence::{EvidenceLog, LogSettings};
use gatehouse_store::{Durability, SqliteEvidenceStore};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The real store, counting what a restart reads.
struct Counting {
    inner: SqliteEvidenceStore,
    /// Rows read by `entries` (the whole log) and `entries_from`.
    whole: AtomicU64,
    tail: AtomicU64,
}

#[async_trait]
impl EvidenceStore for Counting {
    fn append_blocking(
        &self,
        entries: &[(u64, Vec<u8>)],
        checkpoint: Option<StoredCheckpoint>,
    ) -> Result<(), StoreError> {
        self.inner.append_blocking(entries, checkpoint)
    }
    async fn entries_after(
        &self,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Vec<LogRow>, StoreError> {
        let rows = self.inner.entries_after(after, limit).await?;
        self.whole.fetch_add(rows.len() as u64, Ordering::Relaxed);
        Ok(rows)
    }
    async fn entries_from(&self, first: u64, limit: usize) -> Result<Vec<LogRow>, StoreError> {
        let rows = self.inner.entries_from(first, limit).await?;
        self.tail.fetch_add(rows.len() as u64, Ordering::Relaxed);
        Ok(rows)
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

fn settings() -> LogSettings {
    LogSettings {
        node: "restart".into(),
        origin: "gatehouse.test/restart".into(),
        checkpoint_every: 1000,
        checkpoint_interval: Duration::from_secs(3600),
        witnesses: Vec::new(),
    }
}

async fn counting(path: &Path) -> Arc<Counting> {
    Arc::new(Counting {
        inner: SqliteEvidenceStore::open(path, Durability::Os)
            .await
            .unwrap(),
        whole: AtomicU64::new(0),
        tail: AtomicU64::new(0),
    })
}

/// Writes `n` entries, then `tail` more the store holds unsigned (as a
/// gateway killed before its next checkpoint leaves them).
async fn write(path: &Path, key: &SigningKey, n: usize, tail: usize) {
    let store = counting(path).await;
    let (log, task) = EvidenceLog::open(
        store.clone(),
        SigningKey::parse(&key.encode()).unwrap(),
        settings(),
    )
    .await
    .unwrap();
    for chunk in 0..n / 100 {
        let events = (0..100)
            .map(|i| AuditEvent::config_loaded(&format!("c{chunk}-{i}"), "00"))
            .collect();
        log.append(events).await.unwrap();
    }
    log.close().await;
    task.await.unwrap();
    // Entries after the newest checkpoint, written as the writer would.
    if tail > 0 {
        let store = counting(path).await;
        let (log, task) = EvidenceLog::open(
            store.clone(),
            SigningKey::parse(&key.encode()).unwrap(),
            settings(),
        )
        .await
        .unwrap();
        for i in 0..tail {
            log.append(vec![AuditEvent::config_loaded(&format!("t{i}"), "00")])
                .await
                .unwrap();
        }
        // No close (no checkpoint over the tail): a kill -9.
        drop(log);
        task.abort();
        let _ = task.await;
    }
}

/// Reopens the log; what the restart read (whole log, tail).
async fn reopen(path: &Path, key: &SigningKey) -> (u64, u64) {
    let store = counting(path).await;
    let (log, task) = EvidenceLog::open(
        store.clone(),
        SigningKey::parse(&key.encode()).unwrap(),
        settings(),
    )
    .await
    .unwrap();
    let read = (
        store.whole.load(Ordering::Relaxed),
        store.tail.load(Ordering::Relaxed),
    );
    log.close().await;
    task.await.unwrap();
    read
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_reads_the_same_whatever_the_size_of_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate("gatehouse.test/restart").unwrap();
    let (small, large) = (dir.path().join("small.db"), dir.path().join("large.db"));
    write(&small, &key, 2_000, 7).await;
    write(&large, &key, 20_000, 7).await;
    let (whole_small, tail_small) = reopen(&small, &key).await;
    let (whole_large, tail_large) = reopen(&large, &key).await;
    assert_eq!((whole_small, whole_large), (0, 0), "the whole log was read");
    assert_eq!(tail_small, tail_large, "reads grew with the log");
    assert!(tail_large <= 1 + 7 + 2, "{tail_large} rows read");
    // The close after a restart signed the tail: the next restart reads one row.
    assert_eq!(reopen(&large, &key).await, (0, 1));
    // And the whole log verifies, every checkpoint included.
    let store = SqliteEvidenceStore::open_read_only(&large).await.unwrap();
    let entries: Vec<gatehouse_evidence::StoredEntry> = store
        .entries_after(None, usize::MAX)
        .await
        .unwrap()
        .into_iter()
        .map(|r| gatehouse_evidence::StoredEntry {
            position: r.position,
            bytes: r.bytes,
        })
        .collect();
    let checkpoints: Vec<gatehouse_evidence::StoredCheckpoint> = store
        .checkpoints()
        .await
        .unwrap()
        .into_iter()
        .map(|note| gatehouse_evidence::StoredCheckpoint {
            source: "store".into(),
            note,
        })
        .collect();
    let report = gatehouse_evidence::verify(&entries, &checkpoints, &key.verifier());
    assert!(report.is_clean(), "{:?}", report.findings);
    assert!(entries.len() > 20_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_without_stored_state_is_verified_whole_once() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate("gatehouse.test/restart").unwrap();
    let path = dir.path().join("legacy.db");
    write(&path, &key, 2_000, 0).await;
    // As a log written before the state was kept.
    let out = std::process::Command::new("sqlite3")
        .arg(&path)
        .arg("UPDATE checkpoints SET state = NULL")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let (whole, _) = reopen(&path, &key).await;
    assert!(whole >= 2_000, "verified whole: {whole} rows");
    assert_eq!(reopen(&path, &key).await.0, 0, "then resumes");
}
