//! Command-level policy end to end: real psql and tokio-postgres through the
//! gateway with the starter policies; refused statements leave the database
//! unchanged (checked on the backend directly).

mod common;

use common::*;
use serde_json::Value;
use std::time::{Duration, Instant};

const STARTER: &str = include_str!("../../../examples/policies/starter.cedar");

fn setup(h: &Harness) {
    h.cluster
        .sql(
            "app",
            "SET ROLE app_owner;
             CREATE TABLE customers (id int primary key, email text);
             INSERT INTO customers SELECT g, 'c' || g || '@example.com' FROM generate_series(1, 10) g;
             CREATE TABLE orders (id int primary key, customer_id int, status text);
             INSERT INTO orders SELECT g, g, 'paid' FROM generate_series(1, 5) g;",
        )
        .unwrap();
}

fn count(h: &Harness, table: &str) -> String {
    h.cluster
        .sql("app", &format!("select count(*) from {table}"))
        .unwrap()
}

/// The route the starter policies send unbounded DELETE/UPDATE to.
const DBA_ROUTE: &str = "\n[[approval.route]]\nname = \"dba\"\napprovers = [\"dba-leads\"]\n";

fn starter(mode: &'static str) -> Harness {
    let h = Harness::with(Options {
        policy: Some(STARTER.to_string()),
        policy_mode: mode,
        extra_config: DBA_ROUTE,
        ..Options::default()
    });
    setup(&h);
    h
}

/// The newest session of `identity`, once its `n` sessions have ended.
fn last_session(h: &Harness, identity: &str, n: usize) -> Value {
    let list = h.ended_sessions(identity, n);
    h.session_detail(list[0]["id"].as_str().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starter_policy_blocks_destructive_statements_and_lets_normal_traffic_through() {
    let h = starter("enforce");
    let ci = h.token("ci-deploy", &["ci"], "1h");

    // Normal traffic passes, simple and extended.
    let out = h.psql(&ci, "app-db", "select count(*) from customers");
    assert_eq!(stdout(&out), "10", "{}", stderr(&out));
    let c = h.connect(&ci, "app-db").await.unwrap();
    c.execute(
        "update orders set status = $1 where id = $2",
        &[&"shipped", &1i32],
    )
    .await
    .unwrap();
    assert_eq!(
        h.cluster
            .sql("app", "select status from orders where id = 1")
            .unwrap(),
        "shipped"
    );

    // Refused, however written; nothing reaches the backend.
    for (sql, needle) in [
        (
            "DROP TABLE customers",
            "no policy permits ci-deploy (ddl on public.customers)",
        ),
        ("TRUNCATE orders", "forbidden by policy no-truncate"),
        ("/* x */ tRuNcAtE public.orders", "no-truncate"),
        ("DELETE FROM customers", "approval required"),
        (
            "WITH d AS (DELETE FROM customers RETURNING *) SELECT count(*) FROM d",
            "approval required",
        ),
        ("UPDATE customers SET email = NULL", "approval required"),
        (
            "COPY orders TO PROGRAM 'cat > /tmp/x'",
            "no-server-programs-or-files",
        ),
        (
            "DO $$ BEGIN DELETE FROM customers WHERE id = 1; END $$",
            "no policy permits",
        ),
        (
            "INSERT INTO orders VALUES (100, 1, 'x'); DROP TABLE orders",
            "no policy permits",
        ),
    ] {
        let out = h.psql(&ci, "app-db", sql);
        assert!(!out.status.success(), "{sql} should be refused");
        let err = stderr(&out);
        assert!(err.contains("gatehouse: "), "{sql}: {err}");
        assert!(err.contains(needle), "{sql}: expected {needle:?} in {err}");
    }
    assert_eq!(count(&h, "customers"), "10");
    assert_eq!(
        count(&h, "orders"),
        "5",
        "the multi-statement string was refused whole"
    );
    assert_eq!(
        h.cluster
            .sql("app", "select count(*) from customers where email is null")
            .unwrap(),
        "0"
    );

    // The SQLSTATE is 42501 and the session goes on.
    let e = c
        .simple_query("TRUNCATE orders")
        .await
        .expect_err("refused");
    assert_eq!(sqlstate(&e), "42501");
    let db = e.as_db_error().unwrap();
    assert_eq!(db.detail(), Some("decided by policy no-truncate"));
    assert!(db
        .hint()
        .unwrap_or_default()
        .contains("gatehouse policy explain"));
    let e = c
        .execute("DELETE FROM customers", &[])
        .await
        .expect_err("refused (extended)");
    assert_eq!(sqlstate(&e), "42501");
    assert!(message(&e).contains("approval required"), "{}", message(&e));
    assert_eq!(
        c.query_one("select count(*) from customers", &[])
            .await
            .unwrap()
            .get::<_, i64>(0),
        10
    );

    // Pipelined: answers stay in order around a refusal.
    let (a, b, d) = tokio::join!(
        c.query_one("select count(*) from orders", &[]),
        c.execute("DROP TABLE orders", &[]),
        c.query_one("select 41 + 1", &[]),
    );
    assert_eq!(a.unwrap().get::<_, i64>(0), 5);
    assert_eq!(sqlstate(&b.expect_err("refused")), "42501");
    assert_eq!(d.unwrap().get::<_, i32>(0), 42);

    // A refusal inside a transaction aborts it, exactly as a failed statement would.
    c.batch_execute("BEGIN; INSERT INTO orders VALUES (200, 1, 'new')")
        .await
        .unwrap();
    assert_eq!(
        sqlstate(
            &c.simple_query("TRUNCATE orders")
                .await
                .expect_err("refused")
        ),
        "42501"
    );
    let e = c
        .simple_query("select 1")
        .await
        .expect_err("transaction aborted");
    assert_eq!(sqlstate(&e), "25P02");
    c.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(count(&h, "orders"), "5");

    // PREPARE / EXECUTE are decided as what they prepare.
    let out = h.psql(&ci, "app-db", "PREPARE wipe AS DELETE FROM customers");
    assert!(
        stderr(&out).contains("approval required"),
        "{}",
        stderr(&out)
    );
    let out = h.psql(
        &ci,
        "app-db",
        "PREPARE one(int) AS SELECT email FROM customers WHERE id = $1; EXECUTE one(3)",
    );
    assert_eq!(stdout(&out), "c3@example.com", "{}", stderr(&out));

    // Unparseable statements are refused by the gateway itself.
    let e = c.simple_query("SELEC 1").await.expect_err("unparseable");
    assert_eq!(sqlstate(&e), "42601");
    assert!(
        message(&e).starts_with("gatehouse: the statement could not be parsed"),
        "{}",
        message(&e)
    );

    // Agents are read-only; strangers do not get in at all.
    let agent = h.token("support-bot", &["agents"], "1h");
    assert_eq!(
        stdout(&h.psql(&agent, "app-db", "select count(*) from orders")),
        "5"
    );
    let out = h.psql(
        &agent,
        "app-db",
        "UPDATE orders SET status = 'x' WHERE id = 2",
    );
    assert!(
        stderr(&out).contains("no policy permits support-bot (update on public.orders)"),
        "{}",
        stderr(&out)
    );
    // A refusal caused by a flag names it and the attribute that allows it.
    let locker = h.token("support-bot-2", &["agents"], "1h");
    let out = h.psql(&locker, "app-db", "SELECT * FROM orders FOR UPDATE");
    assert!(
        stderr(&out).contains("select on public.orders, locking rows (context.locks_rows)"),
        "{}",
        stderr(&out)
    );
    let stranger = h.token("intruder", &["nobody"], "1h");
    let e = h
        .refused(&stranger, "app-db", "no policy permits it to connect")
        .await;
    assert_eq!(sqlstate(&e), "28000");
    assert!(
        message(&e).contains("no policy permits intruder connecting to app-db"),
        "{}",
        message(&e)
    );

    // Decisions are recorded with the statements.
    drop(c);
    let s = last_session(&h, "support-bot", 2);
    let st = s["statements"].as_array().unwrap();
    let refused = &st[0];
    assert!(
        refused["text"].as_str().unwrap().starts_with("UPDATE"),
        "{refused}"
    );
    assert_eq!(refused["decision"]["decision"], "deny");
    assert_eq!(refused["decision"]["mode"], "enforce");
    assert_eq!(refused["outcome"]["sqlstate"], "42501");
    let list: Vec<Value> = serde_json::from_str(&h.cli_ok(&[
        "sessions",
        "list",
        "--identity",
        "support-bot",
        "--json",
    ]))
    .unwrap();
    let earlier: Value = serde_json::from_str(&h.cli_ok(&[
        "sessions",
        "show",
        list[1]["id"].as_str().unwrap(),
        "--json",
    ]))
    .unwrap();
    let allowed = &earlier["statements"][0];
    assert_eq!(allowed["text"], "select count(*) from orders");
    assert_eq!(allowed["decision"]["decision"], "allow");
    assert_eq!(
        allowed["decision"]["policies"],
        serde_json::json!(["agents-read-only"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_mode_records_what_would_be_refused_and_lets_it_through() {
    let h = starter("audit");
    let ci = h.token("ci-shadow", &["ci"], "1h");
    let out = h.psql(&ci, "app-db", "TRUNCATE orders");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(count(&h, "orders"), "0", "audit mode lets it through");
    let s = last_session(&h, "ci-shadow", 1);
    let d = &s["statements"][0]["decision"];
    assert_eq!(d["decision"], "shadow_deny");
    assert_eq!(d["mode"], "audit");
    assert_eq!(d["policies"], serde_json::json!(["no-truncate"]));
    // Unparseable statements are refused even in audit mode.
    let out = h.psql(&ci, "app-db", "SELEC 1");
    assert!(
        stderr(&out).contains("could not be parsed"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_swaps_policy_and_an_invalid_one_is_rejected() {
    let h = starter("enforce");
    let ci = h.token("ci-deploy", &["ci"], "1h");
    // Prepared while deletes are allowed...
    let c = h.connect(&ci, "app-db").await.unwrap();
    let del = c.prepare("DELETE FROM orders WHERE id = $1").await.unwrap();
    assert_eq!(c.execute(&del, &[&5i32]).await.unwrap(), 1);
    assert!(stderr(&h.psql(&ci, "app-db", "CREATE TABLE t (x int)")).contains("no policy permits"));

    // ...then the policy changes: CI may create tables, and may no longer delete.
    let changed = format!(
        "{STARTER}\n@id(\"ci-ddl\")\npermit (principal in Gatehouse::Group::\"ci\", action == Gatehouse::Action::\"ddl\", resource in Gatehouse::Connection::\"app-db\");\n\
         @id(\"ci-no-delete\")\nforbid (principal in Gatehouse::Group::\"ci\", action == Gatehouse::Action::\"delete\", resource);\n"
    );
    std::fs::write(&h.policy_file, &changed).unwrap();
    let out = h.cli_ok(&["policy", "reload"]);
    assert!(out.contains("policy.cedar"), "{out}");
    let out = h.psql(&ci, "app-db", "CREATE TABLE t (x int)");
    assert!(out.status.success(), "{}", stderr(&out));
    // The statement prepared under the old policy is decided again.
    let e = c.execute(&del, &[&4i32]).await.expect_err("now forbidden");
    assert_eq!(sqlstate(&e), "42501");
    assert!(message(&e).contains("ci-no-delete"), "{}", message(&e));
    assert_eq!(count(&h, "orders"), "4");

    // An invalid policy is rejected with file, line and reason; the old one stays.
    std::fs::write(
        &h.policy_file,
        "permit (principal, action, resource)\nwhen { context.nonsense };\n",
    )
    .unwrap();
    let out = h.cli(&["policy", "reload"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("policy.cedar:2:"), "{err}");
    assert!(err.contains("previous one stays in force"), "{err}");
    let out = h.psql(&ci, "app-db", "CREATE TABLE t2 (x int)");
    assert!(
        out.status.success(),
        "old policy still in force: {}",
        stderr(&out)
    );

    // SIGHUP reloads too.
    std::fs::write(&h.policy_file, STARTER).unwrap();
    std::process::Command::new("kill")
        .args(["-HUP", &h.gateway_pid().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = h.psql(&ci, "app-db", "CREATE TABLE t3 (x int)");
        if !out.status.success() && stderr(&out).contains("no policy permits") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "SIGHUP reload not seen: {}",
            stderr(&out)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(h.log_text().contains("policy reloaded on SIGHUP"));
}

#[test]
fn policy_tools_validate_explain_and_test() {
    let dir = tempfile::tempdir().unwrap();
    let starter = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/policies/starter.cedar");
    let cases = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/policies/starter.tests.toml");
    let run = |args: &[&str]| std::process::Command::new(BIN).args(args).output().unwrap();

    let out = run(&["policy", "validate", starter.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("starter.cedar: ok,"),
        "{}",
        stdout(&out)
    );

    let bad = dir.path().join("bad.cedar");
    std::fs::write(
        &bad,
        "@id(\"x\")\npermit (principal, action == Gatehouse::Action::\"nuke\", resource);\n",
    )
    .unwrap();
    let out = run(&["policy", "validate", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("bad.cedar:2:"), "{}", stderr(&out));

    let out = run(&[
        "policy",
        "explain",
        "--policy",
        starter.to_str().unwrap(),
        "--identity",
        "ci-deploy",
        "--group",
        "ci",
        "--connection",
        "app-db",
        "--sql",
        "WITH d AS (DELETE FROM customers RETURNING *) SELECT * FROM d",
    ]);
    let text = stdout(&out);
    assert!(
        text.contains("action    delete on public.customers (no WHERE)"),
        "{text}"
    );
    assert!(text.contains("flags     data_modifying_cte"), "{text}");
    assert!(text.contains("decision    review"), "{text}");
    assert!(text.contains("unbounded-write-needs-approval"), "{text}");
    // --json: analysis and its error as fields, no Rust Ok/Err wrapper.
    for (sql, ok) in [("SELECT 1", true), ("SELEC 1", false)] {
        let out = run(&[
            "policy",
            "explain",
            "--policy",
            starter.to_str().unwrap(),
            "--identity",
            "ci-deploy",
            "--group",
            "ci",
            "--connection",
            "app-db",
            "--sql",
            sql,
            "--json",
        ]);
        let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert!(
            v.get("Ok").is_none() && v["analysis"].get("Ok").is_none(),
            "{v}"
        );
        assert_eq!(v["analysis"].is_object(), ok, "{v}");
        assert_eq!(v["analysis_error"].is_string(), !ok, "{v}");
        assert_eq!(v["outcome"], if ok { "allow" } else { "deny" }, "{v}");
    }

    let out = run(&[
        "policy",
        "test",
        cases.to_str().unwrap(),
        "--policy",
        starter.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains(" passed, 0 failed"),
        "{}",
        stdout(&out)
    );

    let failing = dir.path().join("failing.toml");
    std::fs::write(
        &failing,
        "[[case]]\nidentity = \"bot\"\ngroups = [\"agents\"]\nconnection = \"app-db\"\nsql = \"DELETE FROM customers WHERE id = 1\"\nexpect = \"allow\"\n",
    )
    .unwrap();
    let out = run(&[
        "policy",
        "test",
        failing.to_str().unwrap(),
        "--policy",
        starter.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("FAIL"), "{}", stdout(&out));
    std::fs::write(
        &failing,
        "[[case]]\nidentity = \"bot\"\nconnection = \"app-db\"\nsql = \"x\"\nexpect = \"maybe\"\n",
    )
    .unwrap();
    let out = run(&[
        "policy",
        "test",
        failing.to_str().unwrap(),
        "--policy",
        starter.to_str().unwrap(),
    ]);
    assert!(
        stderr(&out).contains("expect must be allow, deny or review"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn function_call_messages_are_decided_too() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let h = Harness::with(Options {
        plaintext_on_loopback: true,
        policy: Some(STARTER.to_string()),
        extra_config: DBA_ROUTE,
        ..Options::default()
    });
    let ci = h.token("ci-deploy", &["ci"], "1h");
    let oid = h
        .cluster
        .sql("app", "select 'pg_backend_pid'::regproc::oid")
        .unwrap();
    let oid: i32 = oid.parse().unwrap();

    // A raw protocol session, then a FunctionCall message.
    let mut s = raw_login(h.pg_port, &ci, "app-db").await;
    // FunctionCall: oid, 0 arg formats, 0 args, result format 0.
    let mut f = vec![b'F', 0, 0, 0, 14];
    f.extend_from_slice(&oid.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    s.write_all(&f).await.unwrap();
    let mut reply = Vec::new();
    // Until the reply ends with ReadyForQuery ('Z', length 5, status).
    let ready = |r: &[u8]| {
        r.len() >= 6 && r[r.len() - 6] == b'Z' && r[r.len() - 5..r.len() - 1] == [0, 0, 0, 5]
    };
    while !ready(&reply) {
        let mut chunk = [0u8; 1024];
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed before the answer");
        reply.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&reply);
    assert_eq!(reply[0], b'E', "an error, not a function result: {text}");
    assert!(text.contains("42501"), "{text}");
    assert!(
        // The refusal names the function (by OID: a fast-path call carries no name).
        text.contains("no policy permits ci-deploy (function oid:")
            && text.contains("on connection app-db)"),
        "{text}"
    );
    // The session goes on.
    let q = b"select 7\0";
    let mut m = vec![b'Q'];
    m.extend_from_slice(&((q.len() + 4) as u32).to_be_bytes());
    m.extend_from_slice(q);
    s.write_all(&m).await.unwrap();
    let mut more = [0u8; 256];
    let n = s.read(&mut more).await.unwrap();
    assert!(
        String::from_utf8_lossy(&more[..n]).contains('7'),
        "the session still answers"
    );
}
