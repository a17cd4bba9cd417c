//! MySQL through the gateway, end to end: the real `gatehouse` binary in
//! front of a real MariaDB server (`tests/common/mariadb.rs`), driven by the
//! `mariadb` CLI and by Python's PyMySQL and MySQL Connector/Python. Each
//! check asserts what the client got, what the server holds afterwards, and
//! what the evidence log keeps.

mod common;

use common::mariadb::{json_lines, ED25519_PASSWORD, ED25519_USER};
use common::mysql::MysqlGateway;
use common::{stderr, stdout};

const POLICY: &str = r#"
@id("connect")
permit (principal, action == Gatehouse::Action::"connect", resource);

@id("jobs-work")
permit (principal in Gatehouse::Group::"jobs", action, resource)
unless { action == Gatehouse::Action::"connect" };

@id("no-schema-changes")
forbid (principal, action in [Gatehouse::Action::"ddl", Gatehouse::Action::"dcl",
    Gatehouse::Action::"admin", Gatehouse::Action::"truncate",
    Gatehouse::Action::"copy_out", Gatehouse::Action::"copy_in",
    Gatehouse::Action::"procedural", Gatehouse::Action::"function"], resource);

@id("unbounded-deletes")
@approval("dba")
forbid (principal, action == Gatehouse::Action::"delete", resource)
when { context.has_where == false };

@id("price-changes-wait")
@approval("dba-hold")
forbid (principal, action == Gatehouse::Action::"update", resource)
when { resource.name == "orders" && context.has_where == false };
"#;

const SETUP: &str = "
CREATE TABLE orders (id INT PRIMARY KEY, item VARCHAR(50), total DECIMAL(10,2));
INSERT INTO orders VALUES (1, 'book', 12.50), (2, 'pen', 1.20), (3, 'lamp', 30.00);
CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(50), ssn VARCHAR(11),
    email VARCHAR(100), pin INT);
INSERT INTO customers VALUES (1, 'Ann', '123-45-6789', 'ann@example.com', 4321),
    (2, 'Bob', '987-65-4321', 'bob@example.com', 1234);
";

const ROUTES: &str = r#"
[[approval.route]]
name = "dba"
approvers = ["dba"]
mode = "request"

[[approval.route]]
name = "dba-hold"
approvers = ["dba"]
mode = "hold"
hold_timeout = "60s"

[connection.masking]
detectors = ["email"]

[[connection.masking.rule]]
column = "customers.ssn"
strategy = "partial:4"

[[connection.masking.rule]]
column = "customers.pin"
strategy = "redact"
"#;

fn gateway(db: &str) -> (MysqlGateway, String, String) {
    let g = MysqlGateway::start(POLICY, db, SETUP, ROUTES);
    let job = g.h.token("ci-job", &["jobs"], "1h");
    let dba = g.h.token("alice", &["dba"], "1h");
    (g, job, dba)
}

#[test]
fn a_job_with_only_its_token_works_through_the_mariadb_cli_and_python_drivers() {
    let (g, job, _) = gateway("t_basics");
    // The mariadb CLI, TLS verified against the gateway's CA.
    let out = g.run(&job, "SELECT id, item FROM orders ORDER BY id");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim_end(), "1\tbook\n2\tpen\n3\tlamp");
    let out = g.run(
        &job,
        "INSERT INTO orders VALUES (4, 'mug', 8.00); UPDATE orders SET total = 9.00 WHERE id = 4",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(g.backend("SELECT total FROM orders WHERE id = 4"), "9.00");
    // USE and the current database: unqualified names follow it.
    let out = g.run(
        &job,
        &format!("USE `{}`; SELECT COUNT(*) FROM orders", g.db),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "4");
    // PyMySQL and Connector/Python, each with its own way to the token.
    for driver in ["pymysql", "connector"] {
        let out = g
            .python(&job)
            .args(["--driver", driver, "--cleartext"])
            .args(["SELECT item FROM orders WHERE id = 2", "SELECT 1 + 1"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{driver}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        let lines = json_lines(&out);
        assert_eq!(lines[0], serde_json::json!(["pen"]), "{driver}");
        assert_eq!(lines[1], serde_json::json!([2]), "{driver}");
    }
}

#[test]
fn mysqlclient_and_node_mysql2_work_with_queries_and_prepared_statements() {
    let (g, job, _) = gateway("t_drivers");
    let out = g
        .mysqldb(&job)
        .args([
            "SELECT item FROM orders WHERE id = 3",
            "UPDATE orders SET total = 31.00 WHERE id = 3",
            "SELECT ssn FROM customers WHERE id = 1",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let lines = json_lines(&out);
    assert_eq!(lines[0], serde_json::json!(["lamp"]));
    assert_eq!(lines[1], serde_json::json!({"affected_rows": 1}));
    assert!(!lines[2].to_string().contains("123-45"), "{lines:?}");
    // mysql2: query() (text rows) and execute() (prepared, binary rows).
    for mode in [&[][..], &["--execute"][..]] {
        let out = g
            .node(&job)
            .args(mode)
            .args([
                "SELECT id, item, total FROM orders WHERE id = ? ::: [1]",
                "SELECT name, ssn, pin FROM customers WHERE id = ? ::: [2]",
                "DROP TABLE orders",
            ])
            .output()
            .unwrap();
        let lines = json_lines(&out);
        assert_eq!(
            lines[0],
            serde_json::json!([1, "book", "12.50"]),
            "{mode:?}: {lines:?}"
        );
        let masked = lines[1].to_string();
        assert!(
            masked.contains("Bob") && !masked.contains("987-65") && !masked.contains("1234"),
            "{mode:?}: {masked}"
        );
        assert_eq!(lines[2]["errno"], 1227, "{mode:?}: {lines:?}");
    }
    assert_eq!(g.backend("SELECT total FROM orders WHERE id = 3"), "31.00");
    // COM_SET_OPTION may not turn multi-statements on (mysqlclient's
    // set_server_option(MYSQL_OPTION_MULTI_STATEMENTS_ON)).
    let script = format!(
        "import MySQLdb, os\n\
         c = MySQLdb.connect(host='127.0.0.1', port={}, user='job', passwd=os.environ['MYSQL_PWD'], \
         db='shop-db', ssl={{'ca': '{}'}})\n\
         try:\n    c.set_server_option(0)\n    print('on')\n\
         except MySQLdb.Error as e:\n    print(e.args[0], e.args[1])\n\
         cur = c.cursor()\ncur.execute('SELECT 1')\nprint(cur.fetchone()[0])\n",
        g.h.mysql_port,
        g.ca_file.display()
    );
    let out = std::process::Command::new("/usr/bin/python3")
        .args(["-c", &script])
        .env("MYSQL_PWD", &job)
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(
        text.starts_with("1047 gatehouse: COM_SET_OPTION is refused"),
        "{text}{}",
        stderr(&out)
    );
    assert!(
        text.trim_end().ends_with('1'),
        "the session goes on: {text}"
    );
}

#[test]
fn logins_without_tls_a_token_or_a_known_connection_are_refused_clearly() {
    let (g, job, _) = gateway("t_logins");
    let out = g.run("not-a-token", "SELECT 1");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("1045"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("authentication failed"),
        "{}",
        stderr(&out)
    );
    let out = g
        .cli(&job, "no-such-db")
        .arg("--execute=SELECT 1")
        .output()
        .unwrap();
    assert!(stderr(&out).contains("1049"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("\"no-such-db\" is not configured"),
        "{}",
        stderr(&out)
    );
    // Without TLS, from loopback without plaintext_on_loopback.
    let out = common::mariadb::mariadb_cli(g.h.mysql_port)
        .args(["--user=job", "--skip-ssl", "--database=shop-db"])
        .arg(format!("--password={job}"))
        .arg("--execute=SELECT 1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("requires TLS"), "{}", stderr(&out));
    // The connection as the user name, without a database.
    let out = common::mariadb::mariadb_cli(g.h.mysql_port)
        .args(["--user=shop-db", "--batch", "--skip-column-names"])
        .arg(format!("--password={job}"))
        .arg(format!("--ssl-ca={}", g.ca_file.display()))
        .arg("--execute=SELECT COUNT(*) FROM orders")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "3");
    // Every refusal is in the evidence log; the token never is.
    let events = g.h.evidence_events();
    let failures = events
        .iter()
        .filter(|e| e["kind"] == "auth_failure" && e["payload"]["protocol"] == "mysql")
        .count();
    assert!(failures >= 3, "{events:?}");
    let log = serde_json::to_string(&events).unwrap();
    assert!(!log.contains(&job));
}

#[test]
fn the_gateway_logs_in_to_mariadb_with_ed25519() {
    let g = MysqlGateway::start_as(
        POLICY,
        "t_ed25519",
        "CREATE TABLE t (x INT); INSERT INTO t VALUES (7)",
        ROUTES,
        ED25519_USER,
        ED25519_PASSWORD,
    );
    let job = g.h.token("ci-job", &["jobs"], "1h");
    let out = g.run(&job, "SELECT x, CURRENT_USER() FROM t");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with(&format!("7\t{ED25519_USER}@")),
        "{}",
        stdout(&out)
    );
}

#[test]
fn destructive_statements_are_refused_or_wait_for_an_approver() {
    let (g, job, dba) = gateway("t_approvals");
    let out = g.run(&job, "DROP TABLE orders");
    assert!(
        stderr(&out).contains("ERROR 1227 (42000)"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("permission denied"),
        "{}",
        stderr(&out)
    );
    // Request mode: refused naming the request; runs once after approval.
    let out = g.run(&job, "DELETE FROM orders");
    let err = stderr(&out);
    assert!(err.contains("approval required"), "{err}");
    assert!(err.contains("gatehouse approvals approve"), "{err}");
    assert_eq!(g.backend("SELECT COUNT(*) FROM orders"), "3");
    let id = g.h.pending_approval("DELETE FROM orders");
    let out = g.h.cli(&["approvals", "approve", &id, "--token", &dba]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = g.run(&job, "DELETE FROM orders");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(g.backend("SELECT COUNT(*) FROM orders"), "0");
    // Once only.
    let out = g.run(&job, "DELETE FROM orders");
    assert!(
        stderr(&out).contains("approval required"),
        "{}",
        stderr(&out)
    );
    // Hold mode: the statement waits until an approver approves it.
    g.backend("INSERT INTO orders VALUES (1, 'book', 12.50)");
    let child = g
        .cli(&job, "shop-db")
        .arg("--execute=UPDATE orders SET total = 0")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let id = g.h.pending_approval("UPDATE orders SET total = 0");
    assert_eq!(g.backend("SELECT total FROM orders"), "12.50");
    let out = g.h.cli(&["approvals", "approve", &id, "--token", &dba]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(g.backend("SELECT total FROM orders"), "0.00");
}

/// Statements that try to get something refused past the analysis. Each
/// must be refused, and the server must be untouched.
const BYPASSES: &[&str] = &[
    "DROP TABLE orders",
    "DROP/**/TABLE orders",
    "/*!50000 DROP TABLE orders */",
    "/*!DROP TABLE orders*/",
    "/*M!100000 DROP TABLE orders */",
    "SELECT 1 /*!, (SELECT 1) */; DROP TABLE orders",
    "SELECT 1; DROP TABLE orders",
    "SELECT 1 # a comment\n; DROP TABLE orders",
    "SELECT 1 -- a comment\n; DROP TABLE orders",
    "SELECT 1 /* unterminated",
    "TRUNCATE orders",
    "DELETE FROM orders",
    "DELETE/**/FROM/**/orders",
    "DELETE FROM orders -- WHERE id = 1",
    "DELETE FROM orders # WHERE id = 1",
    "/*!50000 DELETE */ FROM orders",
    "SELECT * FROM orders INTO OUTFILE '/tmp/gatehouse-orders.txt'",
    "SELECT * FROM orders INTO/**/OUTFILE '/tmp/gatehouse-orders.txt'",
    "SELECT * FROM orders INTO DUMPFILE '/tmp/gatehouse-orders.bin'",
    "PREPARE s FROM 'DROP TABLE orders'",
    "PREPARE s FROM 'DELETE FROM orders'",
    "EXECUTE never_prepared",
    "PREPARE s FROM @q",
    "LOAD DATA LOCAL INFILE '/etc/passwd' INTO TABLE orders",
    "LOAD DATA INFILE '/etc/passwd' INTO TABLE orders",
    "SELECT load_file('/etc/passwd')",
    "SELECT sleep(0)",
    "DO sleep(0)",
    "CALL mysql.some_procedure()",
    "SET GLOBAL general_log = 1",
    "SET NAMES gbk",
    "REPLACE INTO orders VALUES (1, 'x', 0)",
    "CREATE TABLE t2 AS SELECT * FROM orders",
    "GRANT ALL ON *.* TO 'gh_native'@'%'",
    "KILL 1",
    "PREPARE k FROM 'KILL 1'",
    "PREPARE w FROM 'SHOW WARNINGS'",
];

#[test]
fn no_comment_quote_or_statement_trick_gets_a_refused_statement_through() {
    let (g, job, _) = gateway("t_bypass");
    let before = g.backend("CHECKSUM TABLE orders");
    for sql in BYPASSES {
        let out = g.python(&job).arg(sql).output().unwrap();
        let lines = json_lines(&out);
        let last = lines.last().cloned().unwrap_or_default();
        assert!(
            !out.status.success() && last["errno"].is_number(),
            "{sql:?} was not refused: {}{}",
            stdout(&out),
            stderr(&out)
        );
        let errno = last["errno"].as_u64().unwrap();
        assert!(
            [1227, 1064, 1047].contains(&errno),
            "{sql:?}: refused by the server, not the gateway: {last}"
        );
    }
    // Strings are read as the server reads them: a backslash-escaped quote
    // keeps the rest inside the string (one harmless statement)…
    let trick = r"SELECT '\'; DROP TABLE orders; -- '";
    let out = g.python(&job).arg(trick).output().unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        json_lines(&out)[0],
        serde_json::json!(["'; DROP TABLE orders; -- "])
    );
    // …but under NO_BACKSLASH_ESCAPES the same text is a string and a second
    // statement: refused. ANSI_QUOTES makes "orders" a table name.
    let out = g
        .python(&job)
        .args(["SET sql_mode = 'NO_BACKSLASH_ESCAPES'", trick])
        .output()
        .unwrap();
    let lines = json_lines(&out);
    assert_eq!(lines.last().unwrap()["errno"], 1064, "{lines:?}");
    let out = g
        .python(&job)
        .args([
            "SET sql_mode = 'ANSI_QUOTES'",
            "SELECT COUNT(*) FROM \"orders\"",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(json_lines(&out).last().unwrap(), &serde_json::json!([3]));
    // Multi-statements through the client flag are never turned on.
    let out = g
        .python(&job)
        .args(["--multi", "SELECT 1; DROP TABLE orders"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", stdout(&out));
    assert_eq!(g.backend("CHECKSUM TABLE orders"), before);
    assert_eq!(
        g.backend("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE()"),
        "2"
    );
    assert!(!std::path::Path::new("/tmp/gatehouse-orders.txt").exists());
    // Each refusal is a refused statement in the evidence log (deletes
    // without WHERE as needing review: their requests are filed).
    let events = g.h.evidence_events();
    let denied = events
        .iter()
        .filter(|e| {
            e["kind"] == "statement"
                && ["deny", "review"]
                    .contains(&e["payload"]["decision"]["decision"].as_str().unwrap_or(""))
        })
        .count();
    assert!(denied >= BYPASSES.len() - 2, "{denied}");
}

#[test]
fn masked_columns_stay_masked_and_cannot_leave_through_an_expression() {
    let (g, job, _) = gateway("t_masking");
    let out = g.run(
        &job,
        "SELECT name, ssn, email, pin FROM customers ORDER BY id",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        !text.contains("123-45-6789") && !text.contains("ann@example.com"),
        "{text}"
    );
    assert!(!text.contains("4321\n"), "{text}");
    assert!(
        text.contains("6789"),
        "partial:4 keeps the last four: {text}"
    );
    // Under an alias, and from PyMySQL (which parses numbers: the masked
    // number column is sent as text).
    let out = g
        .python(&job)
        .args(["SELECT ssn AS s, pin AS p FROM customers WHERE id = 2"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let row = stdout(&out);
    assert!(
        !row.contains("987-65-4321") && !row.contains("1234"),
        "{row}"
    );
    // Expressions lose the column's origin: refused before they run.
    for sql in [
        "SELECT CONCAT(ssn, '') FROM customers",
        "SELECT UPPER(ssn) FROM customers",
        "SELECT name FROM customers UNION SELECT ssn FROM customers",
        "SELECT pin + 0 FROM customers",
    ] {
        let out = g.run(&job, sql);
        assert!(
            stderr(&out).contains("ERROR 1227")
                && stderr(&out).contains("select the column directly"),
            "{sql}: {}{}",
            stdout(&out),
            stderr(&out)
        );
    }
    // A filter does not send the value out.
    let out = g.run(&job, "SELECT name FROM customers WHERE ssn LIKE '987%'");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "Bob");
    // Its warnings may quote it: not shown until a statement reading a
    // table clears them (on the same connection).
    let out = g.run(
        &job,
        "SELECT name FROM customers WHERE ssn LIKE '987%'; SELECT 1; SHOW WARNINGS",
    );
    assert!(stderr(&out).contains("ERROR 1227"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("warnings and errors"),
        "{}",
        stderr(&out)
    );
    let out = g.run(
        &job,
        "SELECT name FROM customers WHERE id = 1; SELECT id FROM orders WHERE id = 1; SHOW WARNINGS",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // A server error on a masked table is withheld (its text may quote a
    // value): the number and SQLSTATE stay.
    let out = g.run(&job, "SELECT name FROM customers WHERE no_such_column = 1");
    assert!(
        stderr(&out).contains("ERROR 1054 (42S22)"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("withheld"), "{}", stderr(&out));
}

#[test]
fn every_statement_is_in_the_signed_evidence_log() {
    let (g, job, _) = gateway("t_evidence");
    let out = g.run(
        &job,
        "SELECT item FROM orders WHERE id = 1; DROP TABLE orders",
    );
    assert!(!out.status.success());
    let select = g.h.result_of("SELECT item FROM orders WHERE id = 1");
    assert_eq!(select["payload"]["command_tag"], "SELECT 1", "{select}");
    assert_eq!(select["payload"]["protocol"], "simple", "{select}");
    let drop = g.h.result_of("DROP TABLE orders");
    assert_eq!(drop["payload"]["decision"], "deny", "{drop}");
    assert_eq!(drop["payload"]["sqlstate"], "42000", "{drop}");
    let events = g.h.evidence_events();
    let start = events
        .iter()
        .find(|e| e["kind"] == "session_start")
        .expect("the session's start");
    assert_eq!(start["payload"]["protocol"], "mysql", "{start}");
    assert_eq!(start["payload"]["connection"], "shop-db", "{start}");
    let out = g.h.cli(&["audit", "verify"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // OCSF: statements are Datastore Activity (6005) with the query.
    let ocsf = g.h.cli_ok(&["audit", "export", "--format", "ocsf"]);
    let refused: Vec<serde_json::Value> = ocsf
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| {
            e["class_uid"] == 6005 && e["query_info"]["query_string"] == "DROP TABLE orders"
        })
        .collect();
    assert!(!refused.is_empty(), "no Datastore Activity for the DROP");
    assert_eq!(
        refused[0]["status_id"], 2,
        "a refused statement is a failure"
    );
    assert_eq!(refused[0]["database"]["name"], "shop-db");
}

#[test]
fn prepared_statements_are_decided_with_their_parameters_and_masked_in_binary_rows() {
    let (g, job, dba) = gateway("t_prepared");
    let prepared = |queries: &[&str]| {
        g.python(&job)
            .args(["--driver", "connector", "--cleartext", "--prepared"])
            .args(queries)
            .output()
            .unwrap()
    };
    // Binary rows: a ruled string column partly masked, a ruled INT column
    // sent as text, detectors on text columns; the clear ones as they are.
    let out = prepared(&["SELECT id, name, ssn, email, pin FROM customers WHERE id = ? ::: [1]"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let row = &json_lines(&out)[0];
    assert_eq!(row[0], 1, "{row}");
    assert_eq!(row[1], "Ann", "{row}");
    let (ssn, email, pin) = (row[2].to_string(), row[3].to_string(), row[4].to_string());
    assert!(!ssn.contains("123-45") && ssn.contains("6789"), "{row}");
    assert!(!email.contains("ann@example.com"), "{row}");
    assert!(!pin.contains("4321"), "{row}");
    // Parameters decide nothing the text does not, but are recorded.
    let out = prepared(&["DELETE FROM orders WHERE id = ? ::: [3]"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(g.backend("SELECT COUNT(*) FROM orders"), "2");
    let r = g.h.result_of("DELETE FROM orders WHERE id = ?");
    assert_eq!(r["payload"]["protocol"], "extended", "{r}");
    assert_eq!(r["payload"]["params"], serde_json::json!(["3"]), "{r}");
    // A statement the policy refuses is never prepared.
    let out = prepared(&["DROP TABLE orders ::: []"]);
    let lines = json_lines(&out);
    assert_eq!(lines.last().unwrap()["errno"], 1227, "{lines:?}");
    // One that needs approval is prepared, and decided at each execution:
    // refused naming its request, then run once approved.
    let out = prepared(&["DELETE FROM orders ::: []"]);
    let lines = json_lines(&out);
    let last = lines.last().unwrap();
    assert_eq!(last["errno"], 1227, "{lines:?}");
    assert!(
        last["msg"].as_str().unwrap().contains("approval required"),
        "{last}"
    );
    assert_eq!(g.backend("SELECT COUNT(*) FROM orders"), "2");
    let id = g.h.pending_approval("DELETE FROM orders");
    let out = g.h.cli(&["approvals", "approve", &id, "--token", &dba]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = prepared(&["DELETE FROM orders ::: []"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(g.backend("SELECT COUNT(*) FROM orders"), "0");
}

#[test]
fn a_caller_may_end_its_own_queries_and_no_one_elses() {
    use std::io::BufRead;
    let (g, job, _) = gateway("t_kill");
    let other = g.h.token("other-job", &["jobs"], "1h");
    // Root holds a row lock, so the job's update waits for it.
    let server = common::mariadb::Mariadb::shared();
    let mut holder = std::process::Command::new("mariadb")
        .arg("--no-defaults")
        .arg("--user=root")
        .arg(format!("--socket={}", server.socket().display()))
        .arg(format!("--database={}", g.db))
        .arg("--execute=BEGIN; SELECT id FROM orders WHERE id = 1 FOR UPDATE; DO SLEEP(30)")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let waiting = |sql: &str| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while g.backend(&format!(
            "SELECT COUNT(*) FROM information_schema.processlist WHERE info LIKE '{sql}%'"
        )) != "1"
        {
            assert!(std::time::Instant::now() < deadline, "{sql} never ran");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    waiting("DO SLEEP");
    let mut blocked = g
        .python(&job)
        .args([
            "SELECT CONNECTION_ID()",
            "UPDATE orders SET item = 'x' WHERE id = 1",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(blocked.stdout.as_mut().unwrap())
        .read_line(&mut first)
        .unwrap();
    let id: serde_json::Value = serde_json::from_str(&first).unwrap();
    let id = id[0].as_u64().unwrap();
    waiting("UPDATE orders SET item");
    // Another identity may not end it, nor may anyone end a session that
    // is not theirs.
    let out = g.run(&other, &format!("KILL QUERY {id}"));
    assert!(stderr(&out).contains("ERROR 1227"), "{}", stderr(&out));
    assert!(stderr(&out).contains("not one of them"), "{}", stderr(&out));
    // Its own identity may.
    let out = g.run(&job, &format!("KILL QUERY {id}"));
    assert!(out.status.success(), "{}", stderr(&out));
    let out = blocked.wait_with_output().unwrap();
    let lines = json_lines(&out);
    assert_eq!(lines.last().unwrap()["errno"], 1317, "{lines:?}");
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(g.backend("SELECT item FROM orders WHERE id = 1"), "book");
    let r = g.h.result_of(&format!("KILL QUERY {id}"));
    assert_eq!(r["payload"]["status"], "error", "the other identity's: {r}");
}

#[test]
fn the_gateway_logs_in_with_caching_sha2_fast_full_and_rsa_and_sends_no_clear_password_unverified()
{
    // MariaDB has no caching_sha2_password: a stand-in server in the test
    // tree speaks MySQL 8's protocol for it (tests/mysql-client/sha2_server.py).
    let ca = gatehouse::certs::TestCa::new("sha2 test CA").unwrap();
    let leaf = ca.leaf(&["localhost", "127.0.0.1"]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, ca_file) = (
        dir.path().join("server.pem"),
        dir.path().join("server.key"),
        dir.path().join("ca.pem"),
    );
    std::fs::write(&cert, &leaf.cert_pem).unwrap();
    std::fs::write(&key, &leaf.key_pem).unwrap();
    std::fs::write(&ca_file, ca.cert_pem()).unwrap();
    let port = gatehouse::pgcluster::free_port().unwrap();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mysql-client/sha2_server.py");
    let public = dir.path().join("public_key.pem");
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/mysql-client/.venv/bin/python");
    let mut server = KillOnDrop(
        std::process::Command::new(python)
            .arg(script)
            .args(["--port", &port.to_string(), "--cert"])
            .arg(&cert)
            .arg("--key")
            .arg(&key)
            .arg("--rsa-public-out")
            .arg(&public)
            .args(["app=app-pw-1", "other=other-pw-2", "third=third-pw-3"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut stdout_lines =
        std::io::BufRead::lines(std::io::BufReader::new(server.0.stdout.take().unwrap()));
    assert_eq!(stdout_lines.next().unwrap().unwrap(), "ready");
    let config: &'static str = r#"
[[connection]]
name = "sha2-db"
kind = "mysql"
host = "127.0.0.1"
port = {sha2_port}
database = "app"
user = "app"
password_env = "SHA2_PASSWORD"
backend_tls = "verify-full"
backend_ca = "{sha2_ca}"

[[connection]]
name = "sha2-unverified"
kind = "mysql"
host = "127.0.0.1"
port = {sha2_port}
database = "app"
user = "other"
password_env = "SHA2_OTHER_PASSWORD"
backend_tls = "require"

[[connection]]
name = "sha2-rsa"
kind = "mysql"
host = "127.0.0.1"
port = {sha2_port}
database = "app"
user = "third"
password_env = "SHA2_THIRD_PASSWORD"
backend_tls = "disable"
backend_public_key_file = "{sha2_public}"
"#;
    let h = common::Harness::with(common::Options {
        policy: Some(READS.into()),
        extra_config: config,
        vars: vec![
            ("{sha2_port}", port.to_string()),
            ("{sha2_ca}", ca_file.display().to_string()),
            ("{sha2_public}", public.display().to_string()),
        ],
        env: vec![
            ("SHA2_PASSWORD", "app-pw-1".into()),
            ("SHA2_OTHER_PASSWORD", "other-pw-2".into()),
            ("SHA2_THIRD_PASSWORD", "third-pw-3".into()),
        ],
        mysql: true,
        ..common::Options::default()
    });
    let ca_gw = h.dir.path().join("gateway-ca.pem");
    std::fs::write(&ca_gw, &h.ca_pem).unwrap();
    let job = h.token("ci-job", &["jobs"], "1h");
    let run = |db: &str| {
        common::mariadb::mariadb_cli(h.mysql_port)
            .args(["--user=job", "--batch", "--skip-column-names"])
            .arg(format!("--password={job}"))
            .arg(format!("--ssl-ca={}", ca_gw.display()))
            .arg(format!("--database={db}"))
            .arg("--execute=SELECT CURRENT_USER()")
            .output()
            .unwrap()
    };
    // First login: full authentication (the password over verified TLS);
    // then the server's cache lets the fast path do.
    for _ in 0..2 {
        let out = run("sha2-db");
        assert!(out.status.success(), "{}{}", stderr(&out), h.log_text());
        assert_eq!(stdout(&out).trim(), "app@%");
    }
    // Unverified TLS: the gateway does not send the password.
    let out = run("sha2-unverified");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("could not log in"),
        "{}",
        stderr(&out)
    );
    // No TLS, the server's RSA key pinned: the password goes encrypted to it.
    let out = run("sha2-rsa");
    assert!(out.status.success(), "{}{}", stderr(&out), h.log_text());
    assert_eq!(stdout(&out).trim(), "third@%");
    drop(server);
    let lines: Vec<String> = stdout_lines.map_while(Result::ok).collect();
    assert_eq!(
        lines,
        ["full app", "fast app", "full-rsa third"],
        "{lines:?}"
    );
    assert!(
        h.log_text().contains("full authentication"),
        "{}",
        h.log_text()
    );
}

/// Connect and read, nothing else.
const READS: &str = r#"
@id("connect") permit (principal, action == Gatehouse::Action::"connect", resource);
@id("reads") permit (principal, action == Gatehouse::Action::"select", resource);
"#;

/// A child process killed when the test ends, however it ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
