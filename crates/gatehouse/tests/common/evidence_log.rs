//! Evidence logs written for the `audit` tests by the real writer into a
//! real SQLite store, without a gateway, and the `gatehouse` binary run on
//! them.

use super::{stderr, stdout, BIN};
use gatehouse_core::{AuditEvent, AuditTrail};
use gatehouse_evidence::{EvidenceLog, LogSettings, SigningKey};
use gatehouse_store::{Durability, SqliteEvidenceStore};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

/// 2026-12-01T00:00:00Z.
pub const DAY_ONE_MS: i64 = 1_796_083_200_000;

/// Writes `entries` events (`event(i)`, a thousand per commit) to a log at
/// `path` signed by `key`, a checkpoint every thousand, one over all at close.
pub async fn write(
    path: &Path,
    key: &SigningKey,
    entries: usize,
    event: impl Fn(usize) -> AuditEvent,
) {
    let store = Arc::new(
        SqliteEvidenceStore::open(path, Durability::Os)
            .await
            .unwrap(),
    );
    let settings = LogSettings {
        node: "audit-test".into(),
        origin: key.verifier().name().to_string(),
        checkpoint_every: 1000,
        checkpoint_interval: Duration::from_secs(3600),
        witnesses: Vec::new(),
    };
    let (log, task) = EvidenceLog::open(store, SigningKey::parse(&key.encode()).unwrap(), settings)
        .await
        .unwrap();
    for chunk in 0..entries.div_ceil(1000) {
        log.append(
            (chunk * 1000..((chunk + 1) * 1000).min(entries))
                .map(&event)
                .collect(),
        )
        .await
        .unwrap();
    }
    log.close().await;
    task.await.unwrap();
}

/// Runs the `gatehouse` binary.
pub fn gatehouse(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

/// Its standard output as JSON.
pub fn json_of(o: &Output) -> Value {
    serde_json::from_str(&stdout(o))
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}{}", stdout(o), stderr(o)))
}

/// Runs `sql` on the SQLite file `db` with the sqlite3 tool.
pub fn sqlite(db: &Path, sql: &str) -> String {
    let out = Command::new("sqlite3").arg(db).arg(sql).output().unwrap();
    assert!(out.status.success(), "{sql}: {}", stderr(&out));
    stdout(&out)
}
