//! Evidence log throughput: events per second through the writer into the
//! real SQLite store, by durability and by how many appenders wait at once
//! (each waits for its acknowledgement, as the data path does).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use gatehouse_core::{ActionDecided, AuditEvent, AuditTrail, DecisionRecord, SessionId};
use gatehouse_evidence::{EvidenceLog, LogSettings, SigningKey};
use gatehouse_store::{Durability, SqliteEvidenceStore};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn event(session: SessionId, seq: u64, decision: &DecisionRecord) -> AuditEvent {
    AuditEvent::statement(&ActionDecided {
        session,
        seq,
        identity: "ci-deploy",
        connection: "app-db",
        protocol: "extended",
        text: "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2",
        parameters: 2,
        decision,
    })
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let decision = DecisionRecord {
        decision: gatehouse_core::Decided::Allow,
        policies: vec!["ci-read-write".into()],
        mode: gatehouse_core::DecidedIn::Enforce,
        reason: None,
    };
    let mut g = c.benchmark_group("evidence_append");
    g.measurement_time(Duration::from_secs(5));
    for (name, durability) in [("disk", Durability::Disk), ("os", Durability::Os)] {
        for appenders in [1usize, 8, 64] {
            let dir = tempfile::tempdir().unwrap();
            let (log, _task) = rt.block_on(async {
                let store = SqliteEvidenceStore::open(&dir.path().join("e.db"), durability)
                    .await
                    .unwrap();
                let settings = LogSettings {
                    node: "bench".into(),
                    origin: "gatehouse.bench/log".into(),
                    checkpoint_every: 1000,
                    checkpoint_interval: Duration::from_secs(10),
                    witnesses: Vec::new(),
                };
                EvidenceLog::open(
                    Arc::new(store),
                    SigningKey::generate("gatehouse.bench/log").unwrap(),
                    settings,
                )
                .await
                .unwrap()
            });
            // One iteration: every appender appends one event and waits for it.
            g.throughput(Throughput::Elements(appenders as u64));
            g.bench_function(
                BenchmarkId::new(name, format!("{appenders}-appenders")),
                |b| {
                    b.iter_custom(|iters| {
                        rt.block_on(async {
                            let start = Instant::now();
                            let mut tasks = Vec::with_capacity(appenders);
                            for _ in 0..appenders {
                                let log = log.clone();
                                let decision = decision.clone();
                                tasks.push(tokio::spawn(async move {
                                    let session = SessionId::new();
                                    for i in 0..iters {
                                        log.append(vec![event(session, i, &decision)])
                                            .await
                                            .unwrap();
                                    }
                                }));
                            }
                            for t in tasks {
                                t.await.unwrap();
                            }
                            start.elapsed()
                        })
                    })
                },
            );
            rt.block_on(log.close());
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
