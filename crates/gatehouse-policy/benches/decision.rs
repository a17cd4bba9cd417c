//! The decision path per statement: analysis (cached and uncached) and the
//! Cedar decision with the starter policies.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use gatehouse_core::{Identity, IdentitySource, OidcSource, Timestamp};
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

    let oidc = github_workload();
    let decide_as = |identity: &Identity, engine: &PolicyEngine, a: &gatehouse_sql::Analysis| {
        let sts: Vec<&StatementAnalysis> = a.statements.iter().collect();
        engine.decide_statements(&StatementRequest {
            identity,
            connection: "app-db",
            client_ip: "127.0.0.1".parse().unwrap(),
            now: Timestamp::now(),
            protocol: "extended",
            approved: false,
            statements: &sts,
            search_path: &[],
        })
    };
    let decide =
        |engine: &PolicyEngine, a: &gatehouse_sql::Analysis| decide_as(&identity, engine, a);
    let mut g = c.benchmark_group("policy");
    let select = analyze_uncached(SELECT, ParseMode::default()).unwrap();
    g.bench_function("decide select (1 table), OIDC workload", |b| {
        b.iter(|| decide_as(&oidc, black_box(&engine), &select))
    });
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

/// A GitHub Actions job as the `github` preset maps it: 20 claims become
/// the principal's tags, built for every decision not cached.
fn github_workload() -> Identity {
    let claims = [
        ("repository", "acme/app"),
        ("repository_owner", "acme"),
        ("repository_id", "123456"),
        ("repository_owner_id", "654321"),
        ("repository_visibility", "private"),
        ("ref", "refs/heads/main"),
        ("ref_type", "branch"),
        ("ref_protected", "true"),
        ("sha", "0123456789abcdef0123456789abcdef01234567"),
        ("workflow", "deploy"),
        (
            "workflow_ref",
            "acme/app/.github/workflows/deploy.yml@refs/heads/main",
        ),
        (
            "job_workflow_ref",
            "acme/app/.github/workflows/deploy.yml@refs/heads/main",
        ),
        ("event_name", "push"),
        ("environment", "production"),
        ("actor", "octocat"),
        ("actor_id", "1"),
        ("run_id", "9876543210"),
        ("run_number", "42"),
        ("run_attempt", "1"),
        ("runner_environment", "github-hosted"),
    ];
    Identity {
        subject: "github/repo:acme/app:environment:production".into(),
        groups: vec!["github/acme".into(), "ci".into()],
        source: IdentitySource::Oidc(Box::new(OidcSource {
            issuer: "github".into(),
            iss: "https://token.actions.githubusercontent.com".into(),
            sub: "repo:acme/app:environment:production".into(),
            client_id: None,
            token_id: Some("bench".into()),
            expires_at: 4_000_000_000,
            claims: claims
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            delegation: None,
        })),
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
