use super::*;
use gatehouse_core::{Identity, Timestamp};
use gatehouse_sql::{analyze_uncached, ParseMode};
use std::path::PathBuf;

const STARTER: &str = include_str!("../../../examples/policies/starter.cedar");

fn engine() -> PolicyEngine {
    PolicyEngine::from_sources(&[(PathBuf::from("starter.cedar"), STARTER.to_string())])
        .unwrap_or_else(|e| panic!("starter policies invalid:\n{e}"))
}

fn who(subject: &str, groups: &[&str]) -> Identity {
    Identity::with_service_token(subject, groups.iter().map(|g| g.to_string()).collect(), "t")
}

fn decide(e: &PolicyEngine, id: &Identity, sql: &str) -> Decision {
    let a = analyze_uncached(sql, ParseMode::default()).unwrap();
    let sts: Vec<&gatehouse_sql::StatementAnalysis> = a.statements.iter().collect();
    e.decide_statements(&StatementRequest {
        identity: id,
        connection: "app-db",
        client_ip: "127.0.0.1".parse().unwrap(),
        now: Timestamp::now(),
        protocol: "simple",
        approved: false,
        statements: &sts,
        search_path: &[],
    })
}

#[test]
fn the_schema_and_starter_policies_load() {
    let e = engine();
    assert_eq!(e.files().len(), 1);
    assert_eq!(e.files()[0].sha256.len(), 64);
    assert!(e.policy_count() >= 9);
}

#[test]
fn connect_is_default_deny() {
    let e = engine();
    let req = |id: &Identity, conn: &str| {
        e.decide_connect(&ConnectRequest {
            identity: id,
            connection: conn,
            kind: "postgres",
            client_ip: "10.1.2.3".parse().unwrap(),
            now: Timestamp::now(),
        })
    };
    assert_eq!(req(&who("ci-deploy", &["ci"]), "app-db").name(), "allow");
    let d = req(&who("stranger", &["nobody"]), "app-db");
    assert_eq!(d.name(), "deny");
    assert!(
        matches!(&d, Decision::Deny { reason, .. } if reason.contains("no policy permits")),
        "{d:?}"
    );
    assert_eq!(req(&who("ci-deploy", &["ci"]), "other-db").name(), "deny");
}

#[test]
fn ci_reads_and_writes_but_no_ddl() {
    let e = engine();
    let ci = who("ci-deploy", &["ci"]);
    for sql in [
        "SELECT * FROM customers",
        "INSERT INTO orders (customer_id, total_cents, status) VALUES (1, 100, 'paid')",
        "UPDATE orders SET status = 'shipped' WHERE id = 1",
        "DELETE FROM orders WHERE id = 1",
        "BEGIN; UPDATE orders SET status = 'x' WHERE id = 2; COMMIT",
        "COPY orders FROM STDIN",
        "SET statement_timeout = '5s'",
    ] {
        assert_eq!(decide(&e, &ci, sql).name(), "allow", "{sql}");
    }
    for sql in [
        "CREATE TABLE x (id int)",
        "DROP TABLE customers",
        "ALTER TABLE customers ADD COLUMN x int",
        "GRANT ALL ON customers TO public",
        "DO $$ BEGIN DELETE FROM customers; END $$",
        "SELECT pg_terminate_backend(1)",
        "ALTER SYSTEM SET fsync = off",
    ] {
        assert_eq!(decide(&e, &ci, sql).name(), "deny", "{sql}");
    }
}

#[test]
fn nobody_truncates_or_drops_the_database_however_it_is_written() {
    let e = engine();
    let dba = who("alice", &["dba"]);
    for sql in [
        "TRUNCATE orders",
        "truncate table ORDERS",
        "/* x */ TrUnCaTe public.orders",
        "DROP DATABASE app",
        "drop database if exists \"app\" with (force)",
        "SELECT 1; DROP DATABASE app",
        "COPY orders TO PROGRAM 'curl http://x'",
    ] {
        let d = decide(&e, &dba, sql);
        assert_eq!(d.name(), "deny", "{sql}: {d:?}");
        assert!(!d.policies().is_empty(), "a named policy denies {sql}");
    }
    // DBAs may still do DDL that is not forbidden.
    assert_eq!(
        decide(&e, &dba, "CREATE INDEX i ON orders (status)").name(),
        "allow"
    );
}

#[test]
fn unbounded_delete_or_update_needs_approval() {
    let e = engine();
    let ci = who("ci-deploy", &["ci"]);
    for sql in [
        "DELETE FROM customers",
        "delete from CUSTOMERS -- comment",
        "UPDATE customers SET email = NULL",
        "WITH d AS (DELETE FROM customers RETURNING *) SELECT count(*) FROM d",
        "EXPLAIN ANALYZE DELETE FROM customers",
        "BEGIN; DELETE FROM orders; COMMIT",
    ] {
        let d = decide(&e, &ci, sql);
        match &d {
            Decision::Review {
                routes, policies, ..
            } => {
                assert_eq!(routes, &vec!["dba".to_string()], "{sql}");
                assert_eq!(
                    policies,
                    &vec!["unbounded-write-needs-approval".to_string()]
                );
            }
            other => panic!("{sql}: expected review, got {other:?}"),
        }
    }
    // An agent is not permitted to delete at all: approval cannot grant it.
    let agent = who("bot", &["agents"]);
    assert_eq!(decide(&e, &agent, "DELETE FROM customers").name(), "deny");
}

#[test]
fn agents_are_read_only() {
    let e = engine();
    let agent = who("support-bot", &["agents"]);
    assert_eq!(
        decide(&e, &agent, "SELECT * FROM customers JOIN orders ON true").name(),
        "allow"
    );
    for sql in [
        "INSERT INTO orders VALUES (1)",
        "UPDATE orders SET status = 'x' WHERE id = 1",
        "WITH x AS (INSERT INTO log VALUES (1) RETURNING 1) SELECT * FROM x",
        "SELECT * FROM customers FOR UPDATE",
        "EXPLAIN ANALYZE SELECT * FROM customers",
        "SET search_path = evil",
        "SELECT my_function()",
        "CALL cleanup()",
    ] {
        assert_eq!(decide(&e, &agent, sql).name(), "deny", "{sql}");
    }
}

#[test]
fn invalid_policies_name_file_line_and_reason() {
    let bad_syntax = "permit (principal, action, resource)\nwhen { context.nope == };";
    let err = PolicyEngine::from_sources(&[(PathBuf::from("a.cedar"), bad_syntax.into())])
        .err()
        .expect("syntax error");
    assert!(err.0[0].file.ends_with("a.cedar"));
    assert_eq!(err.0[0].line, Some(2), "{err}");

    let bad_schema = "@id(\"p\")\npermit (principal, action == Gatehouse::Action::\"drop_everything\", resource);";
    let err = PolicyEngine::from_sources(&[(PathBuf::from("b.cedar"), bad_schema.into())])
        .err()
        .expect("schema error");
    let text = err.to_string();
    assert!(text.starts_with("b.cedar:2: "), "{text}");
    assert!(text.contains("drop_everything"), "{text}");

    let bad_attr = "permit (principal, action == Gatehouse::Action::\"select\", resource)\n\nwhen { context.no_such_flag };";
    let err = PolicyEngine::from_sources(&[(PathBuf::from("c.cedar"), bad_attr.into())])
        .err()
        .expect("unknown attribute");
    assert!(err.to_string().starts_with("c.cedar:3: "), "{err}");

    let dup = "@id(\"x\") permit (principal, action, resource);\n@id(\"x\") forbid (principal, action, resource);";
    let err = PolicyEngine::from_sources(&[(PathBuf::from("d.cedar"), dup.into())])
        .err()
        .expect("dup ids");
    assert!(err.to_string().contains("used twice"), "{err}");
}

#[test]
fn shipped_schema_parses() {
    let _ = load::schema();
}

#[test]
fn time_dependence_is_detected() {
    assert!(!engine().uses_time());
    let timed = "permit (principal, action, resource) when { context.hour < 18 };";
    let e = PolicyEngine::from_sources(&[(PathBuf::from("t.cedar"), timed.into())]).unwrap();
    assert!(e.uses_time());
}

/// Every destructive statement in the analysis corpus, however it is written,
/// is refused (or held for approval) for CI and agents by the starter policy.
#[test]
fn starter_policy_blocks_every_destructive_statement_in_the_corpus() {
    use gatehouse_sql::ActionKind::*;
    let e = engine();
    let ci = who("ci-deploy", &["ci"]);
    let agent = who("support-bot", &["agents"]);
    let corpus = include_str!("../../gatehouse-sql/tests/corpus.txt");
    let mut checked = 0;
    for line in corpus
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        let sql = line.splitn(4, '|').nth(3).unwrap().trim();
        let Ok(a) = analyze_uncached(sql, ParseMode::default()) else {
            continue; // unparseable: the gateway refuses it before any policy
        };
        let actions: Vec<&gatehouse_sql::Action> =
            a.statements.iter().flat_map(|s| &s.actions).collect();
        let flags = a
            .statements
            .iter()
            .any(|s| s.flags.copy_program || s.flags.copy_file);
        let destructive = flags
            || actions.iter().any(|x| {
                matches!(
                    x.kind,
                    Truncate | Ddl | Dcl | Admin | Procedural | Other | Function
                ) || (matches!(x.kind, Delete | Update) && x.has_where == Some(false))
            });
        let writes = actions
            .iter()
            .any(|x| x.kind.writes() || matches!(x.kind, Update | Merge | Delete));
        let ci_d = decide(&e, &ci, sql);
        let agent_d = decide(&e, &agent, sql);
        if destructive {
            checked += 1;
            assert_ne!(ci_d.name(), "allow", "CI may not run {sql}: {ci_d:?}");
        }
        if destructive || writes || flags {
            assert_ne!(
                agent_d.name(),
                "allow",
                "agents may not run {sql}: {agent_d:?}"
            );
        }
    }
    assert!(
        checked >= 60,
        "only {checked} destructive statements checked"
    );
}

#[test]
fn reach_answers_per_connection_table_and_action() {
    let policy = r#"
@id("ci-connect") permit (principal in Gatehouse::Group::"ci", action == Gatehouse::Action::"connect", resource == Gatehouse::Connection::"app-db");
@id("ci-read") permit (principal in Gatehouse::Group::"ci", action == Gatehouse::Action::"select", resource in Gatehouse::Connection::"app-db");
@id("ci-orders") permit (principal in Gatehouse::Group::"ci", action in [Gatehouse::Action::"insert", Gatehouse::Action::"update"], resource == Gatehouse::Table::"app-db/public.orders");
@id("no-secrets") forbid (principal, action, resource == Gatehouse::Table::"app-db/vault.secrets");
"#;
    let e = PolicyEngine::from_sources(&[(PathBuf::from("p.cedar"), policy.to_string())]).unwrap();
    assert_eq!(
        e.named_tables("app-db").into_iter().collect::<Vec<_>>(),
        ["public.orders", "vault.secrets"]
    );
    assert!(e.named_tables("other-db").is_empty());
    let conns = [
        ("app-db".to_string(), "postgres".to_string()),
        ("other-db".to_string(), "postgres".to_string()),
    ];
    let rows = e.reach(
        &who("ci-deploy", &["ci"]),
        &conns,
        "127.0.0.1".parse().unwrap(),
        Timestamp::now(),
    );
    let get = |conn: &str, table: &str, action: &str| {
        rows.iter()
            .find(|r| r.connection == conn && r.table == table && r.action == action)
            .unwrap_or_else(|| panic!("no row {conn} {table} {action}: {rows:?}"))
    };
    let connect = get("app-db", "", "connect");
    assert_eq!(
        (connect.decision.as_str(), connect.policies.as_slice()),
        ("allow", &["ci-connect".to_string()][..])
    );
    assert_eq!(get("app-db", "public.orders", "insert").decision, "allow");
    assert_eq!(get("app-db", "public.orders", "delete").decision, "deny");
    assert_eq!(get("app-db", OTHER_TABLES, "select").decision, "allow");
    assert_eq!(get("app-db", OTHER_TABLES, "insert").decision, "deny");
    let secret = get("app-db", "vault.secrets", "select");
    assert_eq!(
        (secret.decision.as_str(), secret.policies.as_slice()),
        ("deny", &["no-secrets".to_string()][..])
    );
    // Not allowed to connect: nothing more is listed for that connection.
    assert_eq!(get("other-db", "", "connect").decision, "deny");
    assert_eq!(
        rows.iter().filter(|r| r.connection == "other-db").count(),
        1
    );
    // Every probe is a real statement of its kind.
    for action in [
        "select", "insert", "update", "delete", "truncate", "ddl", "copy_out",
    ] {
        get("app-db", OTHER_TABLES, action);
    }
}

#[test]
fn a_reload_cannot_introduce_an_undefined_approval_route() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.cedar");
    let held = |route: &str| {
        format!("@id(\"held\") @approval(\"{route}\") forbid (principal, action == Gatehouse::Action::\"delete\", resource);\n")
    };
    std::fs::write(&file, held("dba")).unwrap();
    let engine = PolicyEngine::load(std::slice::from_ref(&file)).unwrap();
    assert!(PolicyHandle::undefined_routes(&engine, &["dba".into()]).is_empty());
    let handle = PolicyHandle::new(engine, vec![file.clone()], PolicyMode::Enforce)
        .with_routes(vec!["dba".into()]);
    std::fs::write(&file, held("security")).unwrap();
    let e = handle.reload().map(|_| ()).unwrap_err();
    assert!(
        e.to_string()
            .contains("approval route \"security\", which no [[approval.route]] defines"),
        "{e}"
    );
    assert_eq!(handle.generation(), 1, "the policy in force stays");
    std::fs::write(&file, held("dba")).unwrap();
    handle.reload().unwrap();
    assert_eq!(handle.generation(), 2);
}

#[test]
fn an_approved_statement_passes_approval_forbids_but_not_plain_ones() {
    let policy = r#"
@id("all") permit (principal, action, resource);
@id("held") @approval("dba") forbid (principal, action == Gatehouse::Action::"delete", resource) when { !context.has_where };
@id("never") forbid (principal, action == Gatehouse::Action::"delete", resource == Gatehouse::Table::"app-db/public.audit");
"#;
    let e = PolicyEngine::from_sources(&[(PathBuf::from("p.cedar"), policy.to_string())]).unwrap();
    let id = who("ci-deploy", &["ci"]);
    let ask = |sql: &str, approved: bool| {
        let a = analyze_uncached(sql, ParseMode::default()).unwrap();
        let sts: Vec<&gatehouse_sql::StatementAnalysis> = a.statements.iter().collect();
        e.decide_statements(&StatementRequest {
            identity: &id,
            connection: "app-db",
            client_ip: "127.0.0.1".parse().unwrap(),
            now: Timestamp::now(),
            protocol: "simple",
            approved,
            statements: &sts,
            search_path: &[],
        })
    };
    assert_eq!(ask("DELETE FROM customers", false).name(), "review");
    assert_eq!(ask("DELETE FROM customers", true).name(), "allow");
    assert_eq!(ask("DELETE FROM audit", false).name(), "deny");
    assert_eq!(
        ask("DELETE FROM audit", true).name(),
        "deny",
        "approval does not lift a plain forbid"
    );
}

#[test]
fn principals_are_cached_by_the_whole_identity() {
    let policy = r#"
@id("main-writes")
permit (principal, action, resource)
  when { principal.hasTag("repository") && principal.getTag("repository") == "octo-org/app"
         && principal.hasTag("ref") && principal.getTag("ref") == "refs/heads/main" };
"#;
    let e = PolicyEngine::from_sources(&[(PathBuf::from("p.cedar"), policy.to_string())]).unwrap();
    // Same subject, same token id: only a claim differs.
    let job = |git_ref: &str| {
        let mut id = who("github/repo:octo-org/app", &["github/octo-org"]);
        id.source = gatehouse_core::IdentitySource::Oidc(Box::new(gatehouse_core::OidcSource {
            issuer: "github".into(),
            iss: "https://token.actions.githubusercontent.com".into(),
            sub: "repo:octo-org/app".into(),
            client_id: None,
            token_id: Some("same".into()),
            expires_at: 4_000_000_000,
            claims: [("repository", "octo-org/app"), ("ref", git_ref)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            delegation: None,
        }));
        id
    };
    let sql = "INSERT INTO orders (id) VALUES (1)";
    for _ in 0..2 {
        assert!(matches!(
            decide(&e, &job("refs/heads/main"), sql),
            Decision::Allow { .. }
        ));
        assert!(matches!(
            decide(&e, &job("refs/heads/feature"), sql),
            Decision::Deny { .. }
        ));
    }
    let service = who("github/repo:octo-org/app", &["github/octo-org"]);
    assert!(matches!(decide(&e, &service, sql), Decision::Deny { .. }));
    // One entry per distinct identity.
    assert_eq!(e.cache.principals.lock().unwrap().len(), 3);
}

#[test]
fn an_access_review_of_http_and_mcp_connections_asks_about_what_policies_name() {
    let policy = r#"
@id("connect") permit (principal, action == Gatehouse::Action::"connect", resource);
@id("read-v1") permit (principal in Gatehouse::Group::"agents", action in Gatehouse::Action::"http:read", resource == Gatehouse::Connection::"api")
when { context.path like "/v1/*" };
@id("tools") permit (principal in Gatehouse::Group::"agents", action == Gatehouse::Action::"mcp:tools/call", resource == Gatehouse::Connection::"tools")
when { ["query_db", "search"].contains(context.tool) };
@id("drop") @approval("ops") forbid (principal, action == Gatehouse::Action::"mcp:tools/call", resource)
when { context.tool == "query_db" };
"#;
    let e = PolicyEngine::from_sources(&[(PathBuf::from("p.cedar"), policy.to_string())]).unwrap();
    let conns = [
        ("api".to_string(), "http".to_string()),
        ("tools".to_string(), "mcp".to_string()),
    ];
    let rows = e.reach(
        &who("agent", &["agents"]),
        &conns,
        "127.0.0.1".parse().unwrap(),
        Timestamp::now(),
    );
    let get = |conn: &str, what: &str, action: &str| {
        rows.iter()
            .find(|r| r.connection == conn && r.table == what && r.action == action)
            .map(|r| r.decision.clone())
            .unwrap_or_else(|| panic!("no row {conn} {what} {action}: {rows:?}"))
    };
    assert_eq!(get("api", "/v1/", "http:GET"), "allow");
    assert_eq!(get("api", "/v1/", "http:DELETE"), "deny");
    assert_eq!(get("api", "/", "http:GET"), "deny");
    assert_eq!(get("tools", "search", "mcp:tools/call"), "allow");
    assert_eq!(get("tools", "query_db", "mcp:tools/call"), "review");
    assert_eq!(
        get("tools", crate::reach_api::UNNAMED, "mcp:tools/call"),
        "deny"
    );
}

#[test]
fn writes_carry_the_row_cap_of_the_permits_that_allowed_them() {
    let e = engine();
    let ci = who("ci-deploy", &["ci"]);
    let cap = |sql: &str| match decide(&e, &ci, sql) {
        Decision::Allow { row_cap, .. } => row_cap.map(|c| (c.rows, c.policy)),
        other => panic!("{sql}: {other:?}"),
    };
    assert_eq!(
        cap("DELETE FROM orders WHERE id = 1"),
        Some((100, "ci-read-write".into()))
    );
    assert_eq!(
        cap("INSERT INTO orders SELECT * FROM staging"),
        Some((100, "ci-read-write".into()))
    );
    assert_eq!(cap("SELECT * FROM orders"), None, "reads are not capped");
    // A DBA's permit carries no cap: permits add up, so none applies.
    let both = who("lead", &["ci", "dba"]);
    match decide(&e, &both, "DELETE FROM orders WHERE id = 1") {
        Decision::Allow { row_cap, .. } => assert_eq!(row_cap, None),
        other => panic!("{other:?}"),
    }
    // The tightest write cap of a statement counts.
    let two = "@id(\"a\") @max_rows(\"10\") permit (principal, action == Gatehouse::Action::\"delete\", resource);\n\
               @id(\"b\") @max_rows(\"500\") permit (principal, action == Gatehouse::Action::\"delete\", resource);\n\
               @id(\"c\") permit (principal, action == Gatehouse::Action::\"select\", resource);";
    let e2 = PolicyEngine::from_sources(&[(PathBuf::from("two.cedar"), two.into())]).unwrap();
    match decide(
        &e2,
        &ci,
        "DELETE FROM orders WHERE id IN (SELECT id FROM stale)",
    ) {
        Decision::Allow { row_cap, .. } => {
            assert_eq!(
                row_cap.map(|c| (c.rows, c.policy)),
                Some((500, "b".into())),
                "the most generous permit of a write"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_row_cap_must_be_a_number_on_a_permit() {
    for (text, why) in [
        (
            "@id(\"f\") @max_rows(\"5\") forbid (principal, action, resource);",
            "put it on a permit",
        ),
        (
            "@id(\"p\") @max_rows(\"many\") permit (principal, action, resource);",
            "whole number of rows",
        ),
        (
            "@id(\"z\") @max_rows(\"0\") permit (principal, action, resource);",
            "whole number of rows",
        ),
        (
            "@id(\"r\") @max_rows_approval(\"dba\") permit (principal, action, resource);",
            "add @max_rows",
        ),
    ] {
        let err = PolicyEngine::from_sources(&[(PathBuf::from("cap.cedar"), text.into())])
            .err()
            .unwrap_or_else(|| panic!("{text} loaded"));
        assert!(err.to_string().contains(why), "{err}");
    }
}
