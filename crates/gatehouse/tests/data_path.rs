//! End to end: real PostgreSQL, the real gateway binary, real clients.

mod common;

use bytes::Bytes;
use common::*;
use futures_util::{SinkExt, StreamExt, TryStreamExt};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_is_required_and_only_valid_tokens_get_in() {
    let h = Harness::start();
    let token = h.token("ci-deploy", &["ci", "deployers"], "30d");
    assert!(
        token.starts_with("gatehouse_st_"),
        "token has its prefix: {token}"
    );

    // Valid token over TLS: in.
    let out = h.psql(&token, "app-db", "select current_user");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "app_owner",
        "the gateway logs in with its own backend role"
    );

    // Without TLS: refused, with advice.
    let out = h
        .psql_cmd(&token, "app-db")
        .env("PGSSLMODE", "disable")
        .args(["-c", "select 1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("gatehouse requires TLS"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("sslmode=require"), "{}", stderr(&out));

    // Wrong token: 28P01.
    // The same token with its last hex digit changed.
    let last = if token.ends_with('0') { '1' } else { '0' };
    let bad = format!("{}{last}", &token[..token.len() - 1]);
    assert_ne!(bad, token);
    let e = h.refused(&bad, "app-db", "wrong token refused").await;
    assert_eq!(sqlstate(&e), "28P01");
    let e = h.refused("hunter2", "app-db", "non-token refused").await;
    assert_eq!(sqlstate(&e), "28P01");
    assert!(
        message(&e).contains("neither a Gatehouse service token nor a JWT"),
        "{}",
        message(&e)
    );

    // Expired token: 28P01 saying so.
    let short = h.token("short-lived", &[], "1s");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let e = h.refused(&short, "app-db", "expired token refused").await;
    assert_eq!(sqlstate(&e), "28P01");
    assert!(message(&e).contains("expired"), "{}", message(&e));

    // Revoked token: refused for new connections at once.
    let victim = h.token("to-revoke", &[], "1h");
    h.connect(&victim, "app-db")
        .await
        .expect("works before revocation");
    let list = h.cli_ok(&["token", "list"]);
    let id_line = list
        .lines()
        .find(|l| l.contains("to-revoke"))
        .expect("listed");
    let id = id_line.split_whitespace().next().unwrap();
    assert!(id_line.contains("active"));
    let revoked: serde_json::Value =
        serde_json::from_str(&h.cli_ok(&["token", "revoke", id, "--json"])).unwrap();
    assert_eq!(revoked["id"], id, "{revoked}");
    assert!(revoked["revoked_at"].is_string(), "{revoked}");
    assert!(revoked.get("secret_hash").is_none(), "{revoked}");
    let e = h.refused(&victim, "app-db", "revoked token refused").await;
    assert_eq!(sqlstate(&e), "28P01");
    assert!(message(&e).contains("revoked"), "{}", message(&e));
    assert!(h
        .cli_ok(&["token", "list"])
        .lines()
        .any(|l| l.contains(id) && l.contains("revoked")));
    let out = h.cli(&["token", "revoke", "0000000000000000"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not found"), "{}", stderr(&out));

    // Unknown connection: 3D000.
    let e = h
        .refused(&token, "no-such-db", "unknown connection refused")
        .await;
    assert_eq!(sqlstate(&e), "3D000");
    assert!(message(&e).contains("no-such-db"), "{}", message(&e));

    // Backend unreachable: 08006, saying so, without credentials.
    let e = h.refused(&token, "down-db", "unreachable backend").await;
    assert_eq!(sqlstate(&e), "08006");
    let msg = e.as_db_error().unwrap().message().to_string();
    assert!(msg.contains("unreachable"), "{msg}");
    for pw in &h.backend_passwords {
        assert!(!msg.contains(pw.as_str()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_backend_login_method_and_tls_mode_works() {
    let h = Harness::start();
    let token = h.token("ci-deploy", &["ci"], "1h");
    for (conn, user) in [
        ("app-db", "app_owner"),       // SCRAM-SHA-256 over TLS (require)
        ("app-verified", "app_owner"), // SCRAM-SHA-256 over TLS, verify-full
        ("md5-db", "md5_user"),        // MD5, plain TCP
        ("plain-db", "plain_user"),    // cleartext password, TLS preferred
    ] {
        let c = h
            .connect(&token, conn)
            .await
            .unwrap_or_else(|e| panic!("{conn}: {e}"));
        let row = c
            .query_one("select current_user::text, coalesce((select ssl from pg_stat_ssl where pid = pg_backend_pid()), false)", &[])
            .await
            .unwrap();
        assert_eq!(row.get::<_, String>(0), user, "{conn}");
        let ssl: bool = row.get(1);
        assert_eq!(ssl, conn != "md5-db", "{conn}: backend TLS as configured");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_and_extended_queries_relay() {
    let h = Harness::start();
    let token = h.token("app", &["ci"], "1h");
    let c = h.connect(&token, "app-db").await.unwrap();
    c.batch_execute("create table items (id int primary key, name text, price numeric); insert into items values (1, 'apple', 1.5), (2, 'pear', 2.25)")
        .await
        .unwrap();
    // Extended protocol with parameters, prepared once, run twice.
    let stmt = c
        .prepare("select name from items where id = $1")
        .await
        .unwrap();
    assert_eq!(
        c.query_one(&stmt, &[&1i32])
            .await
            .unwrap()
            .get::<_, String>(0),
        "apple"
    );
    assert_eq!(
        c.query_one(&stmt, &[&2i32])
            .await
            .unwrap()
            .get::<_, String>(0),
        "pear"
    );
    let n = c
        .execute("update items set price = price * 2 where id = $1", &[&1i32])
        .await
        .unwrap();
    assert_eq!(n, 1);
    // Errors come back as the server's errors, and the session goes on.
    let e = c.simple_query("select 1/0").await.err().unwrap();
    assert_eq!(sqlstate(&e), "22012");
    let e = c
        .query("select * from missing_table", &[])
        .await
        .err()
        .unwrap();
    assert_eq!(sqlstate(&e), "42P01");
    // A pipeline of extended queries.
    let (a, b, d) = tokio::join!(
        c.query_one("select $1::int + 1", &[&1i32]),
        c.query_one("select $1::text || '!'", &[&"hi"]),
        c.query_one("select count(*) from items", &[]),
    );
    assert_eq!(a.unwrap().get::<_, i32>(0), 2);
    assert_eq!(b.unwrap().get::<_, String>(0), "hi!");
    assert_eq!(d.unwrap().get::<_, i64>(0), 2);
    // Transactions.
    c.batch_execute("begin; insert into items values (3, 'fig', 3); rollback")
        .await
        .unwrap();
    // Notices and notifications pass through (LISTEN/NOTIFY on one connection).
    c.batch_execute("listen chan; notify chan, 'payload'")
        .await
        .unwrap();
    // Multi-statement simple query through psql, checked on the backend directly.
    let out = h.psql(&token, "app-db", "insert into items values (4, 'kiwi', 1); update items set name = upper(name) where id = 4; select name from items where id = 4");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "KIWI");
    assert_eq!(
        h.cluster
            .sql("app", "select string_agg(name, ',' order by id) from items")
            .unwrap(),
        "apple,pear,KIWI"
    );
    assert_eq!(
        h.cluster
            .sql("app", "select price from items where id = 1")
            .unwrap(),
        "3.0"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_in_and_out() {
    let h = Harness::start();
    let token = h.token("loader", &["etl"], "1h");
    let c = h.connect(&token, "app-db").await.unwrap();
    c.batch_execute("create table t (id int, note text)")
        .await
        .unwrap();
    let sink = c
        .copy_in("copy t from stdin with (format csv)")
        .await
        .unwrap();
    let mut sink = Box::pin(sink);
    for chunk in 0..10 {
        let mut data = String::new();
        for i in 0..1000 {
            let id = chunk * 1000 + i;
            data.push_str(&format!("{id},\"note {id}, with comma\"\n"));
        }
        sink.send(Bytes::from(data)).await.unwrap();
    }
    let copied = sink.as_mut().finish().await.unwrap();
    assert_eq!(copied, 10_000);
    assert_eq!(
        h.cluster
            .sql("app", "select count(*), sum(id) from t")
            .unwrap(),
        "10000|49995000"
    );

    let stream = c
        .copy_out("copy (select id, note from t order by id) to stdout")
        .await
        .unwrap();
    let chunks: Vec<Bytes> = stream.try_collect().await.unwrap();
    let text: Vec<u8> = chunks.concat();
    let text = String::from_utf8(text).unwrap();
    assert_eq!(text.lines().count(), 10_000);
    assert_eq!(text.lines().next().unwrap(), "0\tnote 0, with comma");

    // psql's \copy (COPY FROM STDIN / TO STDOUT through the gateway).
    let csv = h.dir.path().join("in.csv");
    std::fs::write(&csv, "20000,from psql\n20001,also\n").unwrap();
    let out = h
        .psql_cmd(&token, "app-db")
        .args([
            "-c",
            &format!("\\copy t from '{}' with (format csv)", csv.display()),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        h.cluster
            .sql("app", "select count(*) from t where id >= 20000")
            .unwrap(),
        "2"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_reaches_the_backend() {
    let h = Harness::start();
    let token = h.token("canceller", &[], "1h");

    // tokio-postgres: cancel token sent over a new connection to the gateway.
    let c = h.connect(&token, "app-db").await.unwrap();
    let cancel = c.cancel_token();
    let tls = h.cancel_tls();
    let t0 = Instant::now();
    let sleeper =
        tokio::spawn(async move { c.simple_query("select pg_sleep(60)").await.map(|_| ()) });
    h.wait_until_running("select pg_sleep(60)");
    cancel.cancel_query(tls).await.unwrap();
    let e = sleeper.await.unwrap().expect_err("the sleep was cancelled");
    assert_eq!(sqlstate(&e), "57014");
    assert!(
        t0.elapsed() < Duration::from_secs(50),
        "cancelled well before the sleep ended"
    );

    // psql: Ctrl-C (SIGINT) makes psql send a CancelRequest through the gateway.
    let child = h
        .psql_cmd(&token, "app-db")
        .args(["-c", "select pg_sleep(60)"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    h.wait_until_running("select pg_sleep(60)");
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert!(
        err.contains("canceling statement due to user request"),
        "psql said: {err}"
    );

    // A forged cancel key cancels nothing and the gateway carries on.
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", h.pg_port))
        .await
        .unwrap();
    use tokio::io::AsyncWriteExt;
    s.write_all(&[0, 0, 0, 16, 4, 210, 22, 46, 0, 0, 0, 1, 0, 0, 0, 2])
        .await
        .unwrap();
    drop(s);
    let out = h.psql(&token, "app-db", "select 42");
    assert_eq!(stdout(&out), "42");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_rows_stream_without_the_gateway_growing() {
    let h = Harness::start();
    let token = h.token("reader", &[], "1h");
    let c = h.connect(&token, "app-db").await.unwrap();
    c.simple_query("select 1").await.unwrap();
    let pid = h.gateway_pid();
    let before = proc_status_kib(pid, "VmHWM:");

    // About 1,000,000 x 220 bytes = 220 MB through the gateway.
    let rows = c
        .query_raw(
            "select g, repeat('x', 200) from generate_series(1, 1000000) g",
            std::iter::empty::<i32>(),
        )
        .await
        .unwrap();
    let mut rows = Box::pin(rows);
    let mut n = 0u64;
    let mut bytes = 0u64;
    while let Some(row) = rows.next().await {
        let row = row.unwrap();
        bytes += row.get::<_, &str>(1).len() as u64;
        n += 1;
    }
    assert_eq!(n, 1_000_000);
    assert!(bytes >= 200_000_000);
    let after = proc_status_kib(pid, "VmHWM:");
    let growth_mib = after.saturating_sub(before) / 1024;
    eprintln!(
        "gateway peak RSS grew by {growth_mib} MiB while relaying {} MB",
        bytes / 1_000_000
    );
    assert!(
        growth_mib < 64,
        "gateway peak RSS grew by {growth_mib} MiB while relaying {} MB",
        bytes / 1_000_000
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbench_initialises_and_runs_through_the_gateway() {
    let h = Harness::start();
    let token = h.token("bench", &["ci"], "1h");
    let out = h
        .pgbench_cmd(&token)
        .args(["-i", "-s", "1", "-q"])
        .output()
        .unwrap();
    assert!(out.status.success(), "pgbench -i: {}", stderr(&out));
    assert_eq!(
        h.cluster
            .sql("app", "select count(*) from pgbench_accounts")
            .unwrap(),
        "100000"
    );
    for mode in ["simple", "extended", "prepared"] {
        let out = h
            .pgbench_cmd(&token)
            .args(["-S", "-c", "4", "-j", "2", "-t", "250", "-M", mode])
            .output()
            .unwrap();
        let text = stdout(&out);
        assert!(
            out.status.success(),
            "pgbench -S -M {mode}: {}{}",
            text,
            stderr(&out)
        );
        assert!(
            text.contains("number of transactions actually processed: 1000/1000"),
            "{text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_input_closes_only_that_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut h = Harness::with(Options {
        plaintext_on_loopback: true,
        ..Options::default()
    });
    let token = h.token("fuzzer", &[], "1h");
    let healthy = h.connect(&token, "app-db").await.unwrap();

    async fn read_all(s: &mut tokio::net::TcpStream) -> Vec<u8> {
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
        out
    }

    // A startup packet with an impossible length.
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", h.pg_port))
        .await
        .unwrap();
    s.write_all(&[0, 0, 0, 3]).await.unwrap();
    let reply = read_all(&mut s).await;
    assert_eq!(reply.first(), Some(&b'E'), "an ErrorResponse, then close");
    assert!(String::from_utf8_lossy(&reply).contains("08P01"));

    // Random garbage.
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", h.pg_port))
        .await
        .unwrap();
    let garbage: Vec<u8> = (0..2000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let _ = s.write_all(&garbage).await;
    let _ = read_all(&mut s).await;

    // GSSENCRequest is declined; then a valid login; then a message with a bad length.
    let mut s = raw_login(h.pg_port, &token, "app-db").await;
    s.write_all(&[b'Q', 0, 0, 0, 2]).await.unwrap();
    let reply = read_all(&mut s).await;
    let text = String::from_utf8_lossy(&reply);
    assert!(
        text.contains("08P01"),
        "protocol violation reported: {text}"
    );
    assert!(text.contains("invalid length"), "{text}");

    // Everyone else is unaffected.
    assert_eq!(
        healthy
            .query_one("select 7", &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        7
    );
    let out = h.psql(&token, "app-db", "select 8");
    assert_eq!(stdout(&out), "8");
    assert!(h.gateway_running(), "gateway survived: {}", h.log_text());
    assert!(!h.log_text().contains("panicked"), "no panic in the log");
}
