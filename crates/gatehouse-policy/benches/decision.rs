//! The decision path per statement: analysis (cached and uncached) and the
//! Cedar decision with the starter policies.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use gatehouse_core::{Identity, Timestamp};
use gatehouse_policy::{PolicyEngine, StatementRequest};
use gatehouse_sql::{analyze_uncached, Analyzer, ParseMode, StatementAnalysis};
use std::path::PathBuf;

const STARTER: &str = include_str!("../../../examples/policies/starter.cedar");
const SELECT: &str = "SELECT abalance FROM pgbench_accounts WHERE aid = $1";
const JOIN: &str = "SELECT c.full_name, sum(o.total_cents) FROM customers c JOIN orders o ON o.customer_id = c.id \
                    WHERE c.country = $1 GROUP BY 1 ORDER BY 2 DESC LIMIT 10";

fn bench(c: &mut Criterion) {
    let engine =
        PolicyEngine::from_sources(&[(PathBuf::from("starter.cedar"), STARTER.into())]).unwrap();
    let identity = Identity::with_service_token("ci-deploy", vec!["ci".into()], "bench");
    let analyzer = Analyzer::new(1024);

    let mut g = c.benchmark_group("analysis");
    g.bench_function("uncached select", |b| {
        b.iter(|| analyze_uncached(black_box(SELECT), ParseMode::default()))
    });
    g.bench_function("uncached join", |b| {
        b.iter(|| analyze_uncached(black_box(JOIN), ParseMode::default()))
    });
    g.bench_function("cached select", |b| {
        b.iter(|| analyzer.analyze(black_box(SELECT), ParseMode::default()))
    });
    g.finish();

    let decide = |engine: &PolicyEngine, a: &gatehouse_sql::Analysis| {
        let sts: Vec<&StatementAnalysis> = a.statements.iter().collect();
        engine.decide_statements(&StatementRequest {
            identity: &identity,
            connection: "app-db",
            client_ip: "127.0.0.1".parse().unwrap(),
            now: Timestamp::now(),
            protocol: "extended",
            approved: false,
            statements: &sts,
        })
    };
    let mut g = c.benchmark_group("policy");
    let select = analyze_uncached(SELECT, ParseMode::default()).unwrap();
    g.bench_function("decide select (1 table)", |b| {
        b.iter(|| decide(black_box(&engine), &select))
    });
    let join = analyze_uncached(JOIN, ParseMode::default()).unwrap();
    g.bench_function("decide join (2 tables)", |b| {
        b.iter(|| decide(black_box(&engine), &join))
    });
    g.finish();

    let mut g = c.benchmark_group("decision path");
    g.bench_function("cached analysis + decide select", |b| {
        b.iter(|| {
            let a = analyzer.analyze(black_box(SELECT), ParseMode::default());
            decide(&engine, a.as_ref().as_ref().unwrap())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
