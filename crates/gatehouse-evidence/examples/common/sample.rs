//! The sample log the figures examples write: sessions of 50 events (a
//! start, 48 statements, an end), about 580 bytes an entry, as a busy
//! gateway writes them.

use gatehouse_core::{AuditEvent, EventKind, Timestamp};
use gatehouse_evidence::LogSettings;
use serde_json::json;
use std::time::Duration;

/// 2026-12-01T00:00:00Z, the sample's first entry.
pub const START_MS: i64 = 1_796_083_200_000;

/// Chunk `chunk` (a thousand events) of a sample log of `n` entries
/// spread evenly over ten days.
pub fn sample_chunk(chunk: usize, n: usize) -> Vec<AuditEvent> {
    let step_ms = (10 * 86_400_000 / n.max(1)) as i64;
    (chunk * 1000..((chunk + 1) * 1000).min(n))
        .map(|i| {
            sample_event(
                i,
                Timestamp::from_unix_millis(START_MS + i as i64 * step_ms),
            )
        })
        .collect()
}

/// Event `i` of the sample: sessions of 50 events.
pub fn sample_event(i: usize, time: Timestamp) -> AuditEvent {
    let session = format!("s-{}", i / 50);
    let identity = json!({"subject": format!("ci-job-{}", i / 5000), "groups": ["ci"], "source": "service_token"});
    let (kind, payload) = match i % 50 {
        0 => (
            EventKind::SessionStart,
            json!({"session": session, "identity": identity, "connection": "orders-db",
                   "client_addr": "10.0.3.7:51234", "application_name": "deploy"}),
        ),
        49 => (
            EventKind::SessionEnd,
            json!({"session": session, "reason": "client_closed", "statements": 48}),
        ),
        k => (
            EventKind::Statement,
            json!({"session": session, "identity": identity, "connection": "orders-db",
                   "statement": format!("SELECT id, status, total FROM orders WHERE customer_id = {k} AND created_at > now() - interval '1 day'"),
                   "decision": {"decision": "allow", "mode": "enforce", "policies": ["ci-read-write"]},
                   "tables": ["public.orders"]}),
        ),
    };
    AuditEvent {
        kind,
        time,
        payload,
    }
}

/// The process's peak resident memory so far, in MiB.
pub fn peak_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib / 1024)
}

/// The figures' log: a checkpoint every 1,000 entries, none by time.
pub fn settings() -> LogSettings {
    LogSettings {
        node: "figures".into(),
        origin: "gatehouse.test/figures".into(),
        checkpoint_every: 1000,
        checkpoint_interval: Duration::from_secs(3600),
        witnesses: Vec::new(),
    }
}
