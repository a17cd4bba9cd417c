//! Row caps end to end: the starter policy caps a CI token's writes at 100
//! rows per statement (`@max_rows("100")`). A real PostgreSQL behind the
//! real gateway, psql, tokio-postgres and a raw protocol client: a capped
//! write over the cap is undone and refused (autocommit, inside a
//! transaction, prepared with parameters, pipelined), one under the cap
//! commits, and the records say how many rows it changed.

mod common;

use common::*;
use std::time::Duration;

/// A gateway with the starter policies over `orders` with 150 rows.
fn harness() -> Harness {
    starter_with_orders(150)
}

fn count(h: &Harness, sql: &str) -> String {
    h.cluster.sql("app", sql).unwrap()
}

fn orders(h: &Harness) -> String {
    count(h, "SELECT count(*) FROM orders")
}

#[test]
fn a_write_over_the_cap_is_undone_and_refused_in_psql() {
    let h = harness();
    let ci = h.token("ci-deploy", &["ci"], "1h");

    // Autocommit: over the cap, rolled back and refused.
    let out = h.psql(&ci, "app-db", "DELETE FROM orders WHERE id > 0");
    assert!(!out.status.success(), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains("changed 150 rows (DELETE 150)"), "{err}");
    assert!(err.contains("more than the 100"), "{err}");
    assert!(err.contains("`ci-read-write`"), "{err}");
    assert!(err.contains("rolled back"), "{err}");
    assert_eq!(orders(&h), "150");
    // Within the cap, it commits, and says what it did.
    let out = h
        .psql_cmd(&ci, "app-db")
        .args(["-c", "UPDATE orders SET note = 'x' WHERE id <= 100"])
        .output()
        .unwrap();
    assert_eq!(stdout(&out).trim(), "UPDATE 100", "{}", stderr(&out));
    assert_eq!(
        count(&h, "SELECT count(*) FROM orders WHERE note = 'x'"),
        "100"
    );
    // INSERT … SELECT counts too.
    let out = h.psql(
        &ci,
        "app-db",
        "INSERT INTO orders SELECT id + 1000, note FROM orders",
    );
    assert!(
        stderr(&out).contains("changed 150 rows (INSERT 0 150)"),
        "{}",
        stderr(&out)
    );
    assert_eq!(orders(&h), "150");

    // Inside the client's transaction: refused like any refused statement
    // (the transaction is aborted), the rest of the session goes on.
    let out = h
        .psql_cmd(&ci, "app-db")
        .args(["-v", "ON_ERROR_STOP=0"])
        .args(["-c", "BEGIN"])
        .args(["-c", "UPDATE orders SET note = 'in tx' WHERE id < 10"])
        .args(["-c", "DELETE FROM orders WHERE id > 0"])
        .args(["-c", "SELECT 1"])
        .args(["-c", "COMMIT"])
        .args(["-c", "SELECT count(*) FROM orders"])
        .output()
        .unwrap();
    let (o, err) = (stdout(&out), stderr(&out));
    assert!(err.contains("changed 150 rows"), "{err}");
    assert!(err.contains("aborted"), "{err}");
    assert!(
        o.contains("ROLLBACK"),
        "COMMIT of an aborted transaction: {o}"
    );
    assert!(o.contains("   150\n"), "{o}");
    assert_eq!(orders(&h), "150");
    assert_eq!(
        count(&h, "SELECT count(*) FROM orders WHERE note = 'in tx'"),
        "0"
    );
    // Within the cap inside a transaction: committed by the client.
    let out = h
        .psql_cmd(&ci, "app-db")
        .args(["-c", "BEGIN"])
        .args(["-c", "DELETE FROM orders WHERE id > 140"])
        .args(["-c", "COMMIT"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(orders(&h), "140");

    // A write the cap cannot count is refused before it runs.
    let out = h.psql(
        &ci,
        "app-db",
        "WITH d AS (DELETE FROM orders WHERE id > 0 RETURNING 1) SELECT count(*) FROM d",
    );
    assert!(stderr(&out).contains("could not count"), "{}", stderr(&out));
    let out = h.psql(
        &ci,
        "app-db",
        "BEGIN; DELETE FROM orders WHERE id = 1; COMMIT",
    );
    assert!(
        stderr(&out).contains("one of several statements in one query"),
        "{}",
        stderr(&out)
    );
    let out = h.psql(
        &ci,
        "app-db",
        "DELETE FROM orders WHERE id = 1; DELETE FROM orders WHERE id = 2",
    );
    assert!(stderr(&out).contains("several writes"), "{}", stderr(&out));
    assert_eq!(orders(&h), "140");
    // An INSERT … VALUES is bounded before it runs: with other statements
    // when within the cap, refused unrun when not.
    let out = h.psql(
        &ci,
        "app-db",
        "BEGIN; INSERT INTO orders VALUES (500, 'a'), (501, 'b'); COMMIT",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(orders(&h), "142");
    let values: Vec<String> = (1000..1101).map(|i| format!("({i}, 'v')")).collect();
    let out = h.psql(
        &ci,
        "app-db",
        &format!("INSERT INTO orders VALUES {}", values.join(", ")),
    );
    assert!(
        stderr(&out).contains("this INSERT writes 101 rows"),
        "{}",
        stderr(&out)
    );
    assert_eq!(orders(&h), "142");
    h.cluster
        .sql("app", "DELETE FROM orders WHERE id >= 500")
        .unwrap();

    // SQL-level PREPARE and EXECUTE: the EXECUTE is counted.
    let out = h
        .psql_cmd(&ci, "app-db")
        .args(["-v", "ON_ERROR_STOP=0"])
        .args(["-c", "PREPARE d(int) AS DELETE FROM orders WHERE id > $1"])
        .args(["-c", "EXECUTE d(0)"])
        .args(["-c", "EXECUTE d(135)"])
        .output()
        .unwrap();
    let (o, err) = (stdout(&out), stderr(&out));
    assert!(err.contains("changed 140 rows (DELETE 140)"), "{err}");
    assert!(o.contains("DELETE 5"), "{o} {err}");
    assert_eq!(orders(&h), "135");

    // The records say how many rows it changed.
    let events = h.evidence_events();
    let refused = events
        .iter()
        .find(|e| {
            e["kind"] == "statement_result"
                && e["payload"]
                    .to_string()
                    .contains("changed 150 rows (DELETE 150)")
        })
        .unwrap_or_else(|| panic!("no result event names the count"));
    assert!(
        refused["payload"].to_string().contains("42501"),
        "{refused}"
    );

    // An approved statement runs uncapped.
    let alice = h.token("alice", &["dba-leads"], "1h");
    let out = h.psql(&ci, "app-db", "DELETE FROM orders WHERE true");
    let err = stderr(&out);
    let at = err.find("request ").expect(&err) + 8;
    let id = err[at..at + 36].to_string();
    let out = h.cli(&["approvals", "approve", &id, "--token", &alice]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = h
        .psql_cmd(&ci, "app-db")
        .args(["-c", "DELETE FROM orders WHERE true"])
        .output()
        .unwrap();
    assert_eq!(stdout(&out).trim(), "DELETE 135", "{}", stderr(&out));
    assert_eq!(orders(&h), "0");

    // COPY … FROM STDIN is counted too: the data flows, a large load is undone.
    let rows: String = (1..=150).map(|i| format!("{i}\tc{i}\n")).collect();
    let copy = |data: &str| {
        use std::io::Write;
        let mut child = h
            .psql_cmd(&ci, "app-db")
            .args(["-c", "\\copy orders FROM STDIN"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(data.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let out = copy(&rows);
    assert!(
        stderr(&out).contains("changed 150 rows (COPY 150)"),
        "{}",
        stderr(&out)
    );
    assert_eq!(orders(&h), "0");
    let few: String = (1..=5).map(|i| format!("{i}\tc{i}\n")).collect();
    let out = copy(&few);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(orders(&h), "5");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_and_pipelined_writes_are_capped_too() {
    let h = harness();
    let ci = h.token("ci-deploy", &["ci"], "1h");
    let client = h.connect(&ci, "app-db").await.unwrap();
    // Prepared, with a parameter: over the cap, refused and undone.
    let e = client
        .execute("DELETE FROM orders WHERE id > $1", &[&0i32])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42501", "{e:?}");
    assert!(message(&e).contains("changed 150 rows"), "{e:?}");
    assert_eq!(tokio::task::block_in_place(|| orders(&h)), "150");
    // Under the cap, it commits.
    let n = client
        .execute("DELETE FROM orders WHERE id > $1", &[&120i32])
        .await
        .unwrap();
    assert_eq!(n, 30);
    assert_eq!(tokio::task::block_in_place(|| orders(&h)), "120");
    // In a transaction: refused, the transaction aborted, then rolled back.
    let mut client = client;
    let tx = client.transaction().await.unwrap();
    tx.execute("UPDATE orders SET note = 'tx' WHERE id = $1", &[&1i32])
        .await
        .unwrap();
    let e = tx
        .execute("UPDATE orders SET note = 'all' WHERE id > $1", &[&0i32])
        .await
        .unwrap_err();
    assert!(message(&e).contains("changed 120 rows"), "{e:?}");
    let e = tx.execute("SELECT 1", &[]).await.unwrap_err();
    assert_eq!(
        sqlstate(&e),
        "25P02",
        "aborted, as after any refused statement"
    );
    tx.rollback().await.unwrap();
    assert_eq!(
        tokio::task::block_in_place(|| count(
            &h,
            "SELECT count(*) FROM orders WHERE note IN ('tx', 'all')"
        )),
        "0"
    );
    // The session goes on.
    let n: i64 = client
        .query_one("SELECT count(*) FROM orders", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 120);
    drop(client);

    // Pipelined in one write: the read behind the capped write waits for
    // it to be undone, and sees every row.
    let mut s = tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current().block_on(raw_login(h.pg_port, &ci, "app-db"))
    });
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let q = |sql: &str| {
        let mut m = vec![b'Q'];
        m.extend_from_slice(&((sql.len() + 5) as u32).to_be_bytes());
        m.extend_from_slice(sql.as_bytes());
        m.push(0);
        m
    };
    let mut all = q("SELECT count(*) FROM orders");
    all.extend(q("DELETE FROM orders WHERE id > 0"));
    all.extend(q("SELECT count(*) FROM orders"));
    s.write_all(&all).await.unwrap();
    let mut got = Vec::new();
    let mut ready = 0;
    while ready < 3 {
        let mut buf = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(20), s.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed");
        got.extend_from_slice(&buf[..n]);
        ready = count_ready(&got);
    }
    let text = String::from_utf8_lossy(&got);
    // A DataRow value "120": four-byte length 3, then the text.
    let counted = got
        .windows(7)
        .filter(|w| *w == [0, 0, 0, 3, b'1', b'2', b'0'])
        .count();
    assert_eq!(counted, 2, "both counts see every row: {text}");
    assert!(text.contains("changed 120 rows"), "{text}");
    assert_eq!(tokio::task::block_in_place(|| orders(&h)), "120");

    // An error of an earlier message, pipelined ahead of a capped Execute
    // in another batch, does not let the Execute's batch commit uncounted.
    let mut all = q("SELECT 1/0");
    all.extend(extended("DELETE FROM orders WHERE id > 0"));
    all.extend(msg(b'S', b""));
    s.write_all(&all).await.unwrap();
    let text = until_ready(&mut s, 2).await;
    assert!(text.contains("division by zero"), "{text}");
    assert!(text.contains("changed 120 rows"), "{text}");
    assert_eq!(tokio::task::block_in_place(|| orders(&h)), "120");

    // A capped Query right after extended-protocol messages without a Sync
    // (whose COMMIT the gateway saw no ReadyForQuery for) is refused unrun.
    s.write_all(&q("BEGIN")).await.unwrap();
    until_ready(&mut s, 1).await;
    let mut all = extended("COMMIT");
    all.extend(msg(b'H', b""));
    s.write_all(&all).await.unwrap();
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("COMMIT") {
        let mut buf = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(20), s.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed");
        seen.extend_from_slice(&buf[..n]);
    }
    s.write_all(&q("DELETE FROM orders WHERE id > 0"))
        .await
        .unwrap();
    let text = until_ready(&mut s, 1).await;
    assert!(text.contains("send Sync first"), "{text}");
    assert_eq!(tokio::task::block_in_place(|| orders(&h)), "120");
}

fn msg(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![ty];
    m.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    m.extend_from_slice(body);
    m
}

/// Parse, Bind and Execute of `sql` (unnamed, no parameters).
fn extended(sql: &str) -> Vec<u8> {
    let mut parse = vec![0];
    parse.extend_from_slice(sql.as_bytes());
    parse.extend_from_slice(&[0, 0, 0]);
    let mut out = msg(b'P', &parse);
    out.extend(msg(b'B', &[0, 0, 0, 0, 0, 0, 0, 0]));
    out.extend(msg(b'E', &[0, 0, 0, 0, 0]));
    out
}

/// Reads until `n` ReadyForQuery messages arrived; the bytes as text.
async fn until_ready(s: &mut tokio::net::TcpStream, n: usize) -> String {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    while count_ready(&got) < n {
        let mut buf = [0u8; 4096];
        let k = tokio::time::timeout(Duration::from_secs(20), s.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(k > 0, "closed");
        got.extend_from_slice(&buf[..k]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// ReadyForQuery messages in a stream of whole messages.
fn count_ready(mut b: &[u8]) -> usize {
    let mut n = 0;
    while b.len() >= 5 {
        let len = u32::from_be_bytes(b[1..5].try_into().unwrap()) as usize;
        if b.len() < 1 + len {
            break;
        }
        if b[0] == b'Z' {
            n += 1;
        }
        b = &b[1 + len..];
    }
    n
}

#[test]
fn psycopg_writes_are_held_and_capped() {
    let h = harness();
    let ci = h.token("ci-deploy", &["ci"], "1h");
    let out = h
        .python_cmd("psycopg/writes.py", &ci, "app-db")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let cases: std::collections::HashMap<String, serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["case"].as_str().unwrap().to_string(), v)
        })
        .collect();
    for held in ["where_true", "where_or_true"] {
        let c = &cases[held];
        assert_eq!(c["ok"], false, "{c}");
        assert!(
            c["message"].as_str().unwrap().contains("approval required"),
            "{c}"
        );
    }
    let c = &cases["over_cap"];
    assert_eq!(c["sqlstate"], "42501", "{c}");
    assert!(
        c["message"].as_str().unwrap().contains("changed 150 rows"),
        "{c}"
    );
    assert_eq!(
        cases["within_cap"]["rowcount"], 10,
        "{:?}",
        cases["within_cap"]
    );
    assert_eq!(cases["tx_within"]["ok"], true);
    assert!(cases["tx_over"]["message"]
        .as_str()
        .unwrap()
        .contains("changed 150 rows"));
    assert_eq!(
        cases["tx_after"]["sqlstate"], "25P02",
        "the transaction is aborted"
    );
    // Nothing over the cap, nothing held, and nothing of the rolled-back
    // transaction changed the table.
    assert_eq!(orders(&h), "150");
    assert_eq!(
        count(&h, "SELECT count(*) FROM orders WHERE note = 'p'"),
        "10"
    );
    assert_eq!(
        count(&h, "SELECT count(*) FROM orders WHERE note = 'q'"),
        "0"
    );
}

/// The request id in a refusal's message.
fn request_id(message: &str) -> String {
    let at = message
        .find("request ")
        .unwrap_or_else(|| panic!("no request in {message}"))
        + 8;
    message[at..at + 36].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_over_cap_write_is_filed_and_approved_for_the_rows_it_changed() {
    let h = harness();
    let ci = h.token("ci-deploy", &["ci"], "1h");
    let alice = h.token("alice", &["dba-leads"], "1h");
    let approve = |id: &str| {
        let out = h.cli(&["approvals", "approve", id, "--token", &alice]);
        assert!(out.status.success(), "{}", stderr(&out));
    };
    let delete = "DELETE FROM orders WHERE id > 0";

    // Over the cap: undone, and a request filed that says how many rows.
    let out = tokio::task::block_in_place(|| h.psql(&ci, "app-db", delete));
    let err = stderr(&out);
    assert!(err.contains("approval required"), "{err}");
    assert!(err.contains("changed 150 rows"), "{err}");
    let id = request_id(&err);
    let shown: serde_json::Value = serde_json::from_str(&tokio::task::block_in_place(|| {
        h.cli_ok(&["approvals", "show", &id, "--json"])
    }))
    .unwrap();
    assert_eq!(shown["max_rows"], 150, "{shown}");
    assert_eq!(shown["text"], delete);
    assert!(
        shown["analysis"]
            .as_str()
            .unwrap()
            .contains("changed 150 rows"),
        "{shown}"
    );
    assert_eq!(tokio::task::block_in_place(|| orders(&h)), "150");

    // Approved, it may change as many rows as it did, and no more: with
    // ten rows more, it is undone again (and the approval is spent).
    tokio::task::block_in_place(|| approve(&id));
    tokio::task::block_in_place(|| {
        h.cluster
            .sql(
                "app",
                "INSERT INTO orders SELECT g, 'n' FROM generate_series(151, 160) g",
            )
            .unwrap()
    });
    let out = tokio::task::block_in_place(|| h.psql(&ci, "app-db", delete));
    let err = stderr(&out);
    assert!(
        err.contains("changed 160 rows") && err.contains("more than the 150"),
        "{err}"
    );
    assert_eq!(tokio::task::block_in_place(|| orders(&h)), "160");
    // Filed again for 160, approved: it runs, once.
    let out = tokio::task::block_in_place(|| h.psql(&ci, "app-db", delete));
    let id = request_id(&stderr(&out));
    tokio::task::block_in_place(|| approve(&id));
    let out = tokio::task::block_in_place(|| h.psql(&ci, "app-db", delete));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(tokio::task::block_in_place(|| orders(&h)), "0");

    // The extended protocol: bound to the parameters, then run approved.
    tokio::task::block_in_place(|| {
        h.cluster
            .sql(
                "app",
                "INSERT INTO orders SELECT g, 'o' FROM generate_series(1, 120) g",
            )
            .unwrap()
    });
    let client = h.connect(&ci, "app-db").await.unwrap();
    let e = client
        .execute("DELETE FROM orders WHERE id > $1", &[&0i32])
        .await
        .unwrap_err();
    assert!(message(&e).contains("approval required"), "{e:?}");
    let id = request_id(&message(&e));
    tokio::task::block_in_place(|| approve(&id));
    // Other parameters are another statement: not approved.
    let e = client
        .execute("DELETE FROM orders WHERE id > $1", &[&1i32])
        .await
        .unwrap_err();
    assert!(message(&e).contains("changed 119 rows"), "{e:?}");
    let n = client
        .execute("DELETE FROM orders WHERE id > $1", &[&0i32])
        .await
        .unwrap();
    assert_eq!(n, 120);
    assert_eq!(tokio::task::block_in_place(|| orders(&h)), "0");
}
