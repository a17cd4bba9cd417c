//! A write torn by a crash or power loss (the log's write-ahead file cut
//! short in its last commit): SQLite drops the torn commit, and the log
//! reopens at the last whole one, resuming and verifying as ever; what was
//! lost was never acknowledged (with durability `disk`, a commit is on disk
//! before its events are), and a witness that saw a lost checkpoint makes
//! the loss visible (the gateway refuses to go on: tests/crash.rs).

use gatehouse_core::{AuditEvent, AuditTrail};
use gatehouse_evidence::{verify_store, EvidenceLog, LogSettings, LogSource, SigningKey};
use gatehouse_store::{Durability, SqliteEvidenceStore};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

fn settings() -> LogSettings {
    LogSettings {
        node: "torn".into(),
        origin: "gatehouse.test/torn".into(),
        checkpoint_every: 10,
        checkpoint_interval: Duration::from_secs(3600),
        witnesses: Vec::new(),
    }
}

fn copy(from: &Path, to: &Path) {
    for suffix in ["", "-wal"] {
        let f = from.with_file_name(format!(
            "{}{suffix}",
            from.file_name().unwrap().to_string_lossy()
        ));
        let t = to.with_file_name(format!(
            "{}{suffix}",
            to.file_name().unwrap().to_string_lossy()
        ));
        std::fs::copy(&f, &t).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_last_commit_is_dropped_and_the_log_goes_on_from_the_one_before() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live.db");
    let key = SigningKey::generate("gatehouse.test/torn").unwrap();
    let store = Arc::new(
        SqliteEvidenceStore::open(&live, Durability::Disk)
            .await
            .unwrap(),
    );
    let (log, task) = EvidenceLog::open(
        store.clone(),
        SigningKey::parse(&key.encode()).unwrap(),
        settings(),
    )
    .await
    .unwrap();
    for i in 0..30 {
        log.append(vec![AuditEvent::config_loaded(&format!("{i}.toml"), "00")])
            .await
            .unwrap();
    }
    // The files as a crash would leave them, the last commit still in the
    // write-ahead file (the writer is open: nothing was checkpointed back).
    let crashed = dir.path().join("crashed.db");
    copy(&live, &crashed);
    log.close().await;
    task.await.unwrap();
    let wal = dir.path().join("crashed.db-wal");
    let len = std::fs::metadata(&wal).unwrap().len();
    assert!(
        len > 4096,
        "the commits are in the write-ahead file ({len} bytes)"
    );
    // Tear the last frame.
    let f = std::fs::OpenOptions::new().write(true).open(&wal).unwrap();
    f.set_len(len - 100).unwrap();
    drop(f);

    let store = Arc::new(
        SqliteEvidenceStore::open(&crashed, Durability::Disk)
            .await
            .unwrap(),
    );
    let last = gatehouse_core::EvidenceStore::last_seq(store.as_ref())
        .await
        .unwrap();
    assert_eq!(
        last,
        Some(28),
        "the torn commit (entry 29) is gone, the ones before stay"
    );
    let (log, task) = EvidenceLog::open(
        store.clone(),
        SigningKey::parse(&key.encode()).unwrap(),
        settings(),
    )
    .await
    .expect("the log reopens at the last whole commit");
    log.append(vec![AuditEvent::config_loaded("after.toml", "00")])
        .await
        .unwrap();
    log.close().await;
    task.await.unwrap();
    let report = verify_store(
        LogSource::store(store.as_ref()),
        Vec::new(),
        &key.verifier(),
        |_| (),
    )
    .await
    .unwrap();
    assert!(report.is_clean(), "{:?}", report.findings);
    assert_eq!(
        report.entries, 30,
        "entries 0 to 28, then the new one as entry 29"
    );
}
