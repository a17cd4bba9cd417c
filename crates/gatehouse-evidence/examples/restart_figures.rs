//! How long reopening an evidence log takes, and how much memory it takes,
//! for a log of N entries: resuming from the newest checkpoint's state, and
//! verifying the whole log (what start-up did before, and still does for a
//! log without that state). The figures in docs/performance.md.
//!
//! `cargo run --release -p gatehouse-evidence --example restart_figures -- 1000000`
//! (one size per run: peak memory is the process's). With `verify` after
//! the size: how fast `gatehouse audit verify` reads the whole log, and in
//! how much memory.

use gatehouse_core::AuditTrail;
use gatehouse_evidence::note::SigningKey;
use gatehouse_evidence::EvidenceLog;
use gatehouse_store::{Durability, SqliteEvidenceStore};

#[path = "common/sample.rs"]
mod sample;
use sample::{peak_mib, sample_chunk, settings};
use std::sync::Arc;
use std::time::Instant;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let whole = std::env::args().nth(2).as_deref() == Some("whole");
    let dir = std::env::temp_dir().join(format!("gatehouse-figures-v3-{n}"));
    let path = dir.join("evidence.db");
    let key_text = if path.exists() {
        std::fs::read_to_string(dir.join("key")).expect("the key beside the log")
    } else {
        std::fs::create_dir_all(&dir).expect("a folder for the log");
        let key = SigningKey::generate("gatehouse.test/figures").expect("a key");
        std::fs::write(dir.join("key"), key.encode()).expect("the key written");
        std::fs::write(dir.join("key.pub"), key.verifier().to_string()).expect("the public key");
        let store = Arc::new(
            SqliteEvidenceStore::open(&path, Durability::Os)
                .await
                .unwrap(),
        );
        let (log, task) = EvidenceLog::open(store, key, settings()).await.unwrap();
        let t = Instant::now();
        // The sample: ten days of sessions (common/sample.rs).
        for chunk in 0..n.div_ceil(1000) {
            let events = sample_chunk(chunk, n);
            log.append(events).await.unwrap();
        }
        log.close().await;
        task.await.unwrap();
        eprintln!("wrote {n} entries in {:.1} s", t.elapsed().as_secs_f64());
        std::fs::read_to_string(dir.join("key")).unwrap()
    };
    if std::env::args().nth(2).as_deref() == Some("verify") {
        let key = SigningKey::parse(&key_text).unwrap().verifier();
        let store = SqliteEvidenceStore::open_read_only(&path).await.unwrap();
        let t = Instant::now();
        let report = gatehouse_evidence::verify_store(
            gatehouse_evidence::LogSource::store(&store),
            Vec::new(),
            &key,
            |_| (),
        )
        .await
        .unwrap();
        let took = t.elapsed().as_secs_f64();
        println!(
            "{} entries: verified ({}) in {took:.1} s, {:.0} entries/s, peak {} MiB",
            report.entries,
            if report.is_clean() {
                "clean"
            } else {
                "NOT clean"
            },
            report.entries as f64 / took,
            peak_mib()
        );
        return;
    }
    if whole {
        // A log without the state (as written before it was kept).
        let c = rusqlite_free_update(&path);
        eprintln!("{c}");
    }
    let size = std::fs::metadata(&path).map_or(0, |m| m.len() / (1 << 20));
    let before = peak_mib();
    let store = Arc::new(
        SqliteEvidenceStore::open(&path, Durability::Os)
            .await
            .unwrap(),
    );
    let t = Instant::now();
    let (log, task) = EvidenceLog::open(store, SigningKey::parse(&key_text).unwrap(), settings())
        .await
        .unwrap();
    let took = t.elapsed();
    println!(
        "{} entries ({size} MiB): reopened ({}) in {:.3} s, peak {} MiB (before opening: {before} MiB)",
        n,
        if whole { "verified whole" } else { "resumed" },
        took.as_secs_f64(),
        peak_mib()
    );
    log.close().await;
    task.await.unwrap();
}

/// Clears the stored state with the sqlite3 tool (no SQLite crate here).
fn rusqlite_free_update(path: &std::path::Path) -> String {
    let out = std::process::Command::new("sqlite3")
        .arg(path)
        .arg("UPDATE checkpoints SET state = NULL")
        .output()
        .expect("sqlite3");
    format!("state cleared: {}", out.status)
}
