//! A live sink reads the store by number: a new sink on a log whose first
//! entries were sealed into segments starts at the first entry the store
//! holds, and a sink never skips a missing number (it stops, and says so).

use async_trait::async_trait;
use gatehouse_core::{AuditEvent, AuditTrail, EvidenceStore};
use gatehouse_evidence::export::Format;
use gatehouse_evidence::{
    spawn_sink, EvidenceLog, LogSettings, SigningKey, Sink, SinkEvent, SinkSettings,
};
use gatehouse_store::{Durability, SqliteEvidenceStore};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

struct Collect(Arc<Mutex<Vec<u64>>>);

#[async_trait]
impl Sink for Collect {
    fn describe(&self) -> String {
        "a test sink".into()
    }
    async fn deliver(&mut self, batch: &[SinkEvent]) -> Result<(), String> {
        self.0
            .lock()
            .unwrap()
            .extend(batch.iter().map(|e| e.entry.seq));
        Ok(())
    }
}

async fn log_of(path: &Path, n: usize) {
    let store = Arc::new(
        SqliteEvidenceStore::open(path, Durability::Os)
            .await
            .unwrap(),
    );
    let settings = LogSettings {
        node: "sinks".into(),
        origin: "gatehouse.test/sinks".into(),
        checkpoint_every: 100,
        checkpoint_interval: Duration::from_secs(3600),
        witnesses: Vec::new(),
    };
    let (log, task) = EvidenceLog::open(
        store,
        SigningKey::generate("gatehouse.test/sinks").unwrap(),
        settings,
    )
    .await
    .unwrap();
    log.append(
        (0..n)
            .map(|i| AuditEvent::config_loaded(&format!("{i}.toml"), "00"))
            .collect(),
    )
    .await
    .unwrap();
    log.close().await;
    task.await.unwrap();
}

/// Delivers what the store holds to a new sink; the numbers delivered.
async fn deliver(path: &Path, dir: &Path, total: u64) -> Vec<u64> {
    let store: Arc<dyn EvidenceStore> = Arc::new(
        SqliteEvidenceStore::open(path, Durability::Os)
            .await
            .unwrap(),
    );
    let got = Arc::new(Mutex::new(Vec::new()));
    let settings = SinkSettings {
        name: "test".into(),
        format: Format::Jsonl,
        batch_max: 64,
        cursor: dir.join(format!("cursor-{}", rand_name())),
    };
    let (tx, rx) = tokio::sync::watch::channel(total);
    let task = spawn_sink(Box::new(Collect(got.clone())), settings, store, rx)
        .await
        .unwrap();
    // The log is closed: the feeder ends once it has delivered or stopped.
    drop(tx);
    let _ = tokio::time::timeout(Duration::from_secs(20), task).await;
    let v = got.lock().unwrap().clone();
    v
}

fn rand_name() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn sqlite(db: &Path, sql: &str) {
    let out = std::process::Command::new("sqlite3")
        .arg(db)
        .arg(sql)
        .output()
        .unwrap();
    assert!(out.status.success(), "{sql}: {out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_sink_starts_at_the_live_log_and_never_skips_a_number() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("evidence.db");
    log_of(&db, 1_000).await;
    // As after sealing: entries 0 to 399 are no longer in the store.
    sqlite(&db, "DELETE FROM entries WHERE seq < 400");
    let got = deliver(&db, dir.path(), 1_000).await;
    assert_eq!(
        got.first(),
        Some(&400),
        "a new sink starts at the first live entry"
    );
    assert_eq!(got, (400..1_000).collect::<Vec<_>>());

    // A sink whose saved position was sealed away meanwhile is told so.
    let store: Arc<dyn EvidenceStore> = Arc::new(
        SqliteEvidenceStore::open(&db, Durability::Os)
            .await
            .unwrap(),
    );
    let cursor = dir.path().join("old-cursor");
    std::fs::write(&cursor, format!("101 {}\n", "ab".repeat(32))).unwrap();
    let settings = SinkSettings {
        name: "old".into(),
        format: Format::Jsonl,
        batch_max: 64,
        cursor,
    };
    let (_tx, rx) = tokio::sync::watch::channel(1_000);
    let err = spawn_sink(Box::new(Collect(Default::default())), settings, store, rx)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("(entry 100) is sealed in a segment now"),
        "{err}"
    );
    assert!(err.contains("gatehouse audit export"), "{err}");

    // A number missing further on: delivered up to it, then the sink stops.
    sqlite(&db, "DELETE FROM entries WHERE seq = 700");
    let got = deliver(&db, dir.path(), 1_000).await;
    // Whole batches go out: up to the batch holding the gap, nothing after.
    let end = 400 + got.len() as u64;
    assert_eq!(
        got,
        (400..end).collect::<Vec<_>>(),
        "delivered in order, each once"
    );
    assert!(
        (700 - 64..=700).contains(&end),
        "entry 700 is missing: delivery stops at it ({end})"
    );
}
