//! The security review's findings, end to end: a real PostgreSQL behind the
//! real gateway with the starter policies, real psql and raw protocol
//! clients, asserting on the backend's state, the client's answer and what
//! the records say ran (docs/security.md).

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A gateway with the starter policies over `orders` with 5 rows.
fn starter() -> Harness {
    starter_with_orders(5)
}

fn orders(h: &Harness) -> String {
    h.cluster.sql("app", "SELECT count(*) FROM orders").unwrap()
}

fn tables_named(h: &Harness, like: &str) -> String {
    h.cluster
        .sql(
            "app",
            &format!("SELECT count(*) FROM pg_class WHERE relname LIKE '{like}'"),
        )
        .unwrap()
}

// ---------------------------------------------------------------- a raw client

/// A protocol-level client over plaintext loopback, logged in.
struct Raw(TcpStream);

impl Raw {
    fn login(h: &Harness, token: &str) -> Raw {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let s = rt.block_on(raw_login(h.pg_port, token, "app-db"));
        let s = s.into_std().unwrap();
        s.set_nonblocking(false).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        Raw(s)
    }

    /// Sends all messages in one write (one TCP segment where it fits).
    fn send(&mut self, messages: &[Vec<u8>]) {
        let all: Vec<u8> = messages.concat();
        self.0.write_all(&all).unwrap();
    }

    /// Reads messages until `n` ReadyForQuery have arrived (or the
    /// connection closed); returns (type, body) pairs.
    fn until_ready(&mut self, n: usize) -> Vec<(u8, Vec<u8>)> {
        let mut got = Vec::new();
        let mut buf = Vec::new();
        let mut ready = 0;
        while ready < n {
            while buf.len() >= 5 {
                let len = u32::from_be_bytes(buf[1..5].try_into().unwrap()) as usize;
                if buf.len() < 1 + len {
                    break;
                }
                let ty = buf[0];
                got.push((ty, buf[5..1 + len].to_vec()));
                buf.drain(..1 + len);
                if ty == b'Z' {
                    ready += 1;
                }
            }
            if ready >= n {
                break;
            }
            let mut chunk = [0u8; 8192];
            match self.0.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(k) => buf.extend_from_slice(&chunk[..k]),
            }
        }
        got
    }
}

fn msg(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![ty];
    m.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    m.extend_from_slice(body);
    m
}

fn cstrs(parts: &[&[u8]]) -> Vec<u8> {
    let mut b = Vec::new();
    for p in parts {
        b.extend_from_slice(p);
        b.push(0);
    }
    b
}

fn query(sql: &[u8]) -> Vec<u8> {
    msg(b'Q', &cstrs(&[sql]))
}

fn parse(name: &str, sql: &str) -> Vec<u8> {
    let mut b = cstrs(&[name.as_bytes(), sql.as_bytes()]);
    b.extend_from_slice(&0i16.to_be_bytes());
    msg(b'P', &b)
}

fn bind(portal: &str, statement: &str) -> Vec<u8> {
    let mut b = cstrs(&[portal.as_bytes(), statement.as_bytes()]);
    b.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    msg(b'B', &b)
}

fn execute(portal: &str) -> Vec<u8> {
    let mut b = cstrs(&[portal.as_bytes()]);
    b.extend_from_slice(&0i32.to_be_bytes());
    msg(b'E', &b)
}

fn sync() -> Vec<u8> {
    msg(b'S', b"")
}

/// The messages (`M` fields) of every ErrorResponse, with their SQLSTATEs.
fn errors(got: &[(u8, Vec<u8>)]) -> Vec<(String, String)> {
    got.iter()
        .filter(|(ty, _)| *ty == b'E')
        .map(|(_, body)| {
            let mut code = String::new();
            let mut message = String::new();
            for f in body.split(|b| *b == 0) {
                match f.first() {
                    Some(b'C') => code = String::from_utf8_lossy(&f[1..]).into(),
                    Some(b'M') => message = String::from_utf8_lossy(&f[1..]).into(),
                    _ => {}
                }
            }
            (code, message)
        })
        .collect()
}

// ---------------------------------------------------------------- the tests

#[test]
fn the_gateway_reads_statements_under_the_settings_the_server_uses() {
    let h = starter();
    let agent = h.token("agent-7", &["agents"], "1h");
    let dba = h.token("dba-1", &["dba"], "1h");

    // 1. An encoding in which a backslash can be half a character is refused
    // at startup (psql sends PGCLIENTENCODING as client_encoding) ...
    let out = h
        .psql_cmd(&agent, "app-db")
        .env("PGCLIENTENCODING", "SJIS")
        .args(["-c", "SELECT 1"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "an SJIS session was opened");
    let err = stderr(&out);
    assert!(
        err.contains("client_encoding") && err.contains("UTF8"),
        "{err}"
    );
    // ... and by SET, SET NAMES and set_config, whoever asks.
    for (token, sql) in [
        (&agent, "SET client_encoding = 'SJIS'"),
        (&agent, "SET NAMES 'BIG5'"),
        (&agent, "SET standard_conforming_strings = off"),
        (&dba, "SELECT set_config('client_encoding', 'SJIS', false)"),
        (
            &dba,
            "SELECT pg_catalog.set_config('standard_conforming_strings', 'off', true)",
        ),
        (
            &dba,
            "SELECT set_config(lower('CLIENT_ENCODING'), 'SJIS', false)",
        ),
    ] {
        let out = h.psql(token, "app-db", sql);
        assert!(!out.status.success(), "{sql} ran");
        assert!(
            stderr(&out).contains("42501")
                || stderr(&out).contains("pinned")
                || stderr(&out).contains("computed at run time"),
            "{sql}: {}",
            stderr(&out)
        );
    }
    // Going back to the pinned value is fine.
    let out = h.psql(
        &agent,
        "app-db",
        "RESET client_encoding; SHOW client_encoding",
    );
    assert_eq!(stdout(&out).trim(), "UTF8", "{}", stderr(&out));

    // 2. The parse-setting race: SET and a crafted literal in one write.
    // Read with standard strings (the gateway's setting when it decides) the
    // second is one SELECT of a string; read with backslash escapes (the
    // server's, had the SET run) it also creates a table. The SET is refused,
    // so the server reads it as the gateway did.
    let mut raw = Raw::login(&h, &agent);
    raw.send(&[
        query(b"SET standard_conforming_strings = off"),
        query(b"SELECT 'a\\'' ; CREATE TABLE pwned_scs (x int); --'"),
    ]);
    let got = errors(&raw.until_ready(2));
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got[0].1.contains("pinned"), "{got:?}");
    assert!(
        got[1].1.contains("standard_conforming_strings off"),
        "{got:?}"
    );
    assert_eq!(tables_named(&h, "pwned%"), "0");
    // The crafted text was refused on its own too: a function could flip the
    // setting unreported within one batch, so a text whose meaning depends
    // on it is refused, as is a backslash right after a non-ASCII character
    // (half of a character in SJIS); a backslash elsewhere is fine.
    raw.send(&[
        query("SELECT E'\u{c4}\\x27'".as_bytes()),
        query(b"SELECT 'C:\\temp'"),
    ]);
    let got = errors(&raw.until_ready(2));
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].1.contains("non-ASCII"), "{got:?}");

    // 5. Startup options are decided as the SET they amount to: an agent
    // may not set search_path (starter policy), at startup no more than by SET.
    for options in [
        "-c search_path=secret",
        "--search-path=secret",
        "-c\\ search_path=x",
    ] {
        let out = h
            .psql_cmd(&agent, "app-db")
            .env("PGOPTIONS", options)
            .args(["-c", "SHOW search_path"])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{options}: {}", stdout(&out));
        let err = stderr(&out);
        assert!(
            err.contains("search_path") || err.contains("startup option"),
            "{options}: {err}"
        );
    }
    let out = h
        .psql_cmd(&agent, "app-db")
        .env("PGOPTIONS", "-c standard_conforming_strings=off")
        .args(["-c", "SELECT 1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    // The login's own keys cannot be replaced through options.
    for options in [
        "-c database=postgres",
        "-c user=postgres",
        "-c options=-c\\ role=x",
    ] {
        let out = h
            .psql_cmd(&agent, "app-db")
            .env("PGOPTIONS", options)
            .args(["-A", "-t", "-c", "SELECT current_database()"])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{options}: {}", stdout(&out));
        assert!(
            stderr(&out).contains("not a setting the gateway passes on"),
            "{options}: {}",
            stderr(&out)
        );
    }
    let out = h
        .psql_cmd(&agent, "app-db")
        .env("PGOPTIONS", "-d 5")
        .args(["-c", "SELECT 1"])
        .output()
        .unwrap();
    assert!(stderr(&out).contains("not supported"), "{}", stderr(&out));
    // A DBA may, and the setting is the server's from the start.
    let out = h
        .psql_cmd(&dba, "app-db")
        .env("PGOPTIONS", "-c search_path=secret,public")
        .args(["-A", "-t", "-c", "SHOW search_path"])
        .output()
        .unwrap();
    assert_eq!(stdout(&out).trim(), "secret,public", "{}", stderr(&out));
    // Harmless settings still pass for anyone.
    let out = h
        .psql_cmd(&agent, "app-db")
        .env("PGOPTIONS", "-c statement_timeout=5s")
        .args(["-A", "-t", "-c", "SHOW statement_timeout"])
        .output()
        .unwrap();
    assert_eq!(stdout(&out).trim(), "5s", "{}", stderr(&out));
    // The login's event names the settings it passed on.
    let events = h.evidence_events();
    let login = events
        .iter()
        .rev()
        .find(|e| e["kind"] == "auth_success" && e["payload"]["identity"]["subject"] == "agent-7")
        .unwrap();
    assert_eq!(
        login["payload"]["settings"]["statement_timeout"], "5s",
        "{login}"
    );

    // A pinned setting changed by code inside a function ends the session.
    h.cluster
        .sql(
            "app",
            "CREATE FUNCTION flip() RETURNS text LANGUAGE sql \
             AS $$ SELECT set_config('standard_conforming_strings', 'off', false) $$",
        )
        .unwrap();
    let out = h.psql(&dba, "app-db", "SELECT flip(); SELECT 'after'");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("a setting it reads statements under was changed"),
        "{}",
        stderr(&out)
    );
    assert!(!stdout(&out).contains("after"));
    let ended = h.ended_sessions("dba-1", 5);
    let broken = ended
        .iter()
        .find(|s| s["end"]["reason"] == "pinned_setting_changed")
        .unwrap_or_else(|| panic!("{ended:?}"));
    // The statement that changed it keeps its real outcome in the record.
    let detail = h.session_detail(broken["id"].as_str().unwrap());
    let flip = detail["statements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|st| st["text"].as_str().unwrap_or("").contains("flip()"))
        .unwrap_or_else(|| panic!("{detail}"));
    assert_eq!(flip["outcome"]["status"], "ok", "{flip}");
}

#[test]
fn a_name_runs_what_the_server_holds_under_it_and_the_log_says_so() {
    let h = starter();
    let ci = h.token("ci-deploy", &["ci"], "1h");
    let alice = h.token("alice", &["dba-leads"], "1h");

    // 3. Parse s1 = an unbounded DELETE (needs approval: the server holds a
    // stand-in under s1), then s1 = SELECT 1, which the server refuses (the
    // name is taken), then Execute s1.
    let mut raw = Raw::login(&h, &ci);
    raw.send(&[parse("s1", "DELETE FROM orders"), sync()]);
    raw.until_ready(1);
    raw.send(&[parse("s1", "SELECT 1"), sync()]);
    let got = errors(&raw.until_ready(1));
    assert_eq!(got[0].0, "42P05", "the server kept s1: {got:?}");
    raw.send(&[bind("", "s1"), execute(""), sync()]);
    let got = errors(&raw.until_ready(1));
    assert!(
        got.iter().any(|(_, m)| m.contains("approval required")),
        "s1 was not decided as the DELETE the server holds: {got:?}"
    );
    assert_eq!(orders(&h), "5", "the DELETE ran");
    // SQL PREPARE and protocol Parse share one namespace on the server: a
    // protocol Close of p, then a held Parse of p, then SQL EXECUTE p.
    raw.send(&[query(b"PREPARE p AS SELECT 1")]);
    raw.until_ready(1);
    let mut close = vec![b'S'];
    close.extend_from_slice(b"p\0");
    raw.send(&[msg(b'C', &close), sync()]);
    raw.until_ready(1);
    raw.send(&[parse("p", "DELETE FROM orders"), sync()]);
    raw.until_ready(1);
    raw.send(&[query(b"EXECUTE p")]);
    let got = errors(&raw.until_ready(1));
    assert!(!got.is_empty(), "EXECUTE p ran");
    assert_eq!(orders(&h), "5", "the DELETE ran through SQL EXECUTE");
    // Names longer than the server keeps are one name to it, and to the gateway.
    let long = |c: char| format!("{}{c}", "a".repeat(63));
    raw.send(&[parse(&long('1'), "SELECT 1"), sync()]);
    raw.until_ready(1);
    let mut close = vec![b'S'];
    close.extend_from_slice(long('2').as_bytes());
    close.push(0);
    raw.send(&[msg(b'C', &close), sync()]);
    raw.until_ready(1);
    raw.send(&[parse(&long('3'), "DELETE FROM orders"), sync()]);
    raw.until_ready(1);
    raw.send(&[bind("", &long('1')), execute(""), sync()]);
    raw.until_ready(1);
    assert_eq!(orders(&h), "5", "a truncated name ran the DELETE");
    drop(raw);

    // The same through SQL PREPARE: an approved PREPARE of the DELETE, then a
    // PREPARE of the name the server refuses, then EXECUTE.
    let out = h.psql(&ci, "app-db", "PREPARE p AS DELETE FROM orders");
    let err = stderr(&out);
    let at = err.find("request ").expect(&err) + 8;
    let id = err[at..at + 36].to_string();
    let out = h.cli(&["approvals", "approve", &id, "--token", &alice]);
    assert!(out.status.success(), "{}", stderr(&out));
    // One session: the approved PREPARE, the refused redefinition, EXECUTE.
    let out = h
        .psql_cmd(&ci, "app-db")
        .args(["-v", "ON_ERROR_STOP=0"])
        .args(["-c", "PREPARE p AS DELETE FROM orders"])
        .args(["-c", "PREPARE p AS SELECT 1"])
        .args(["-c", "EXECUTE p"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(err.contains("already exists"), "{err}");
    assert!(
        err.matches("approval required").count() == 1,
        "EXECUTE p was not decided as the DELETE the server holds: {err}"
    );
    assert_eq!(orders(&h), "5", "the DELETE ran");
    let out = h.psql(
        &ci,
        "app-db",
        "PREPARE q AS DELETE FROM orders WHERE id = 1; PREPARE q AS SELECT 1; EXECUTE q",
    );
    assert!(!out.status.success());
    assert_eq!(
        orders(&h),
        "5",
        "a failed PREPARE stopped the rest of the string"
    );
}

/// A Bind of `statement` to the unnamed portal with one text parameter.
fn bind_text(statement: &str, value: &str) -> Vec<u8> {
    let mut b = cstrs(&[b"", statement.as_bytes()]);
    b.extend_from_slice(&0i16.to_be_bytes()); // parameter formats: text
    b.extend_from_slice(&1i16.to_be_bytes());
    b.extend_from_slice(&(value.len() as i32).to_be_bytes());
    b.extend_from_slice(value.as_bytes());
    b.extend_from_slice(&0i16.to_be_bytes()); // result formats
    msg(b'B', &b)
}

/// The text of every column of every DataRow, in order.
fn row_values(got: &[(u8, Vec<u8>)]) -> Vec<String> {
    let mut values = Vec::new();
    for (_, body) in got.iter().filter(|(ty, _)| *ty == b'D') {
        let mut at = 2;
        for _ in 0..i16::from_be_bytes([body[0], body[1]]) {
            let len = i32::from_be_bytes(body[at..at + 4].try_into().unwrap());
            at += 4;
            if len < 0 {
                values.push("<null>".into());
                continue;
            }
            let len = len as usize;
            values.push(String::from_utf8_lossy(&body[at..at + len]).into());
            at += len;
        }
    }
    values
}

#[test]
fn a_statement_held_for_approval_reaches_the_server_only_once_approved() {
    let h = starter();
    let ci = h.token("ci-deploy", &["ci"], "1h");
    let alice = h.token("alice", &["dba-leads"], "1h");
    let held = "DELETE FROM orders WHERE note = $1 OR true";
    let on_server = |raw: &mut Raw| {
        raw.send(&[query(
            b"SELECT name || ': ' || statement FROM pg_prepared_statements ORDER BY name",
        )]);
        row_values(&raw.until_ready(1))
    };

    // The Parse needs approval (an always-true WHERE): the server holds a
    // stand-in under the name; a Describe is still answered as for the
    // statement itself (one text parameter, no rows).
    let mut raw = Raw::login(&h, &ci);
    let mut describe = vec![b'S'];
    describe.extend_from_slice(b"s1\0");
    raw.send(&[parse("s1", held), msg(b'D', &describe), sync()]);
    let got = raw.until_ready(1);
    let types: Vec<u8> = got.iter().map(|(ty, _)| *ty).collect();
    assert_eq!(types, b"1tnZ", "{got:?}");
    let params = &got[1].1;
    assert_eq!(params[..2], 1i16.to_be_bytes(), "one parameter");
    assert_eq!(params[2..6], 25u32.to_be_bytes(), "of type text");
    assert_eq!(
        on_server(&mut raw),
        ["s1: "],
        "the DELETE reached the server"
    );

    // Its Bind, with a parameter, is decided: refused, a request filed.
    raw.send(&[bind_text("s1", "o1"), execute(""), sync()]);
    let got = errors(&raw.until_ready(1));
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].1.contains("approval required"), "{got:?}");
    let at = got[0].1.find("request ").unwrap() + 8;
    let id = got[0].1[at..at + 36].to_string();
    assert_eq!(on_server(&mut raw), ["s1: "]);
    assert_eq!(orders(&h), "5");

    // Approved, the same Bind takes the statement to the server and runs it
    // once. A Close of the client's own goes first in the same write (as
    // pgjdbc sends them): each answer still pairs with its message.
    let out = h.cli(&["approvals", "approve", &id, "--token", &alice]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut close = vec![b'S'];
    close.extend_from_slice(b"nothing\0");
    raw.send(&[
        msg(b'C', &close),
        bind_text("s1", "o1"),
        execute(""),
        sync(),
    ]);
    let got = raw.until_ready(1);
    assert!(errors(&got).is_empty(), "{got:?}");
    let types: Vec<u8> = got.iter().map(|(ty, _)| *ty).collect();
    assert_eq!(
        types, b"32CZ",
        "the Close's, the Bind's, then the DELETE's: {got:?}"
    );
    assert_eq!(orders(&h), "0");
    assert_eq!(on_server(&mut raw), [format!("s1: {held}")]);
    raw.send(&[bind_text("s1", "o2"), execute(""), sync()]);
    let got = errors(&raw.until_ready(1));
    assert!(got[0].1.contains("approval required"), "used once: {got:?}");

    // A refused Execute's poison fails even where a cursor took its portal's name.
    raw.send(&[query(
        b"BEGIN; DECLARE \"gatehouse refused portal\" CURSOR WITH HOLD FOR SELECT 1; COMMIT",
    )]);
    raw.until_ready(1);
    raw.send(&[execute("nope"), sync()]);
    let got = raw.until_ready(1);
    let types: Vec<u8> = got.iter().map(|(ty, _)| *ty).collect();
    assert_eq!(types, b"EZ", "{got:?}");
    assert!(errors(&got)[0].1.contains("no portal \"nope\""), "{got:?}");

    // The gateway's own names are not the client's to use.
    raw.send(&[parse("gatehouse refused statement", "SELECT 1"), sync()]);
    let got = errors(&raw.until_ready(1));
    assert!(got[0].1.contains("are the gateway's own"), "{got:?}");
    raw.send(&[query(
        b"PREPARE \"gatehouse refused statement\" AS SELECT 1",
    )]);
    let got = errors(&raw.until_ready(1));
    assert!(got[0].1.contains("are the gateway's own"), "{got:?}");
    assert_eq!(on_server(&mut raw), [format!("s1: {held}")]);
}

#[test]
fn secrets_in_statements_reach_no_record() {
    let h = starter();
    let dba = h.token("dba-1", &["dba"], "1h");
    h.cluster
        .sql(
            "app",
            "CREATE ROLE victim;
             CREATE FUNCTION dblink_connect(text) RETURNS text LANGUAGE sql AS $$ SELECT 'ok' $$;",
        )
        .unwrap();
    let secrets = [
        "ALTER ROLE victim PASSWORD $$sekrit-one$$",
        "ALTER ROLE victim PASSWORD E'sekrit-\\x74wo'",
        "alter role victim with /* c */ password U&'sekrit-thr\\0065e'",
        "CREATE ROLE r2 LOGIN PASSWORD 'sekrit-four'",
        "CREATE USER MAPPING FOR victim SERVER nowhere OPTIONS (user 'u', U&\"p\\0061ssword\" 'sekrit-five')",
        // Unparseable: withheld whole.
        "ALTER ROLE victim PASSWORD 'sekrit-six' nonsense nonsense",
    ];
    for sql in &secrets {
        // They fail on the server (privileges, no such server) or at the
        // gateway (unparseable): recorded either way.
        let _ = h.psql(&dba, "app-db", sql);
    }
    // A secret in a parameter of a statement that holds one, and in a code
    // body and a foreign server's options the normaliser does not reach.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = h.connect(&dba, "app-db").await.unwrap();
        c.execute(
            "SELECT dblink_connect($1)",
            &[&"host=x password=sekrit-seven"],
        )
        .await
        .unwrap();
        let _ = c
            .batch_execute(
                "DO $$BEGIN EXECUTE 'ALTER ROLE victim PASSWORD ''sekrit-eight'''; END$$",
            )
            .await;
        let _ = c
            .batch_execute(
                "CREATE SERVER s9 FOREIGN DATA WRAPPER nowhere OPTIONS (password 'sekrit-nine')",
            )
            .await;
    });
    drop(rt);
    let sessions = h.ended_sessions("dba-1", secrets.len() + 1);
    let texts: Vec<String> = sessions
        .iter()
        .flat_map(|s| {
            let d = h.session_detail(s["id"].as_str().unwrap());
            d["statements"]
                .as_array()
                .unwrap()
                .iter()
                .map(|st| st["text"].as_str().unwrap_or("").to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        texts
            .iter()
            .any(|t| t.contains("PASSWORD '[masked:password]'")),
        "{texts:?}"
    );
    assert!(texts.iter().any(|t| t.contains("withheld")), "{texts:?}");
    // Stop the gateway so every record is on disk, then look everywhere.
    let mut h = h;
    h.stop_gateway();
    // Every secret starts "sekrit-", however it was escaped in the statement.
    for (path, bytes) in h.data_dir_files() {
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("sekrit-"), "a secret in {}", path.display());
    }
    assert!(
        !h.log_text().contains("sekrit-"),
        "a secret in the gateway's log"
    );
}

const LIMITS: &str = r#"
[[approval.route]]
name = "dba"
approvers = ["dba-leads"]
mode = "hold"
hold_timeout = "60s"

[limits]
max_message_size = "64KiB"
max_statement_size = "16KiB"
max_connections = 8
max_sessions_per_identity = 2
approval_requests_per_minute = 2
"#;

#[test]
fn one_caller_cannot_hurt_the_others() {
    let h = Harness::with(Options {
        plaintext_on_loopback: true,
        policy: Some(STARTER_POLICY.into()),
        extra_config: LIMITS,
        ..Options::default()
    });
    h.cluster
        .sql(
            "app",
            "CREATE TABLE orders (id int, note text); GRANT ALL ON orders TO app_owner;",
        )
        .unwrap();
    let agent = h.token("agent-7", &["agents"], "1h");
    let other = h.token("agent-8", &["agents"], "1h");
    let ci = h.token("ci-deploy", &["ci"], "1h");

    // 12. A statement longer than the gateway analyzes is refused unparsed;
    // a message larger than it reads ends that session with a clear error.
    let long = format!("SELECT {}", vec!["1"; 9000].join(","));
    let out = h.psql(&agent, "app-db", &long);
    let err = stderr(&out);
    assert!(
        err.contains("54000") || err.contains("more than the 16384 bytes the gateway analyzes"),
        "{err}"
    );
    let mut raw = Raw::login(&h, &agent);
    let huge = format!("SELECT '{}'", "x".repeat(100_000));
    raw.send(&[query(huge.as_bytes())]);
    let got = errors(&raw.until_ready(1));
    assert_eq!(got.first().map(|e| e.0.as_str()), Some("54000"), "{got:?}");
    assert!(got[0].1.contains("exceeded its limit"), "{got:?}");
    drop(raw);
    // Others are served meanwhile.
    assert_eq!(
        stdout(&h.psql(&other, "app-db", "SELECT 41 + 1")).trim(),
        "42"
    );

    // 15. Sessions per identity: two held open, the third refused; another
    // identity is not affected.
    let a = Raw::login(&h, &agent);
    let b = Raw::login(&h, &agent);
    let out = h.psql(&agent, "app-db", "SELECT 1");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("sessions open, the most one identity may"),
        "{}",
        stderr(&out)
    );
    assert_eq!(stdout(&h.psql(&other, "app-db", "SELECT 1")).trim(), "1");
    drop((a, b));

    // Connections at once, handshakes included: idle sockets cannot take the
    // gateway's file descriptors; the limit frees as they close.
    std::thread::sleep(Duration::from_millis(300));
    let idle: Vec<TcpStream> = (0..8)
        .map(|_| TcpStream::connect(("127.0.0.1", h.pg_port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let out = h.psql(&other, "app-db", "SELECT 1");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("client connections open"),
        "{}",
        stderr(&out)
    );
    drop(idle);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(stdout(&h.psql(&other, "app-db", "SELECT 1")).trim(), "1");

    // 14. A held statement's session stops reading: what the client sends
    // behind it does not pile up in the gateway.
    let mut held = Raw::login(&h, &ci);
    held.send(&[query(b"DELETE FROM orders")]);
    std::thread::sleep(Duration::from_millis(500));
    let pid = h.gateway_pid();
    let before = proc_status_kib(pid, "VmRSS:");
    let mut writer = held.0.try_clone().unwrap();
    writer
        .set_write_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let filler = query(format!("SELECT '{}'", "y".repeat(60_000)).as_bytes());
    let mut sent = 0usize;
    for _ in 0..1000 {
        if writer.write_all(&filler).is_err() {
            break;
        }
        sent += filler.len();
    }
    let after = proc_status_kib(pid, "VmRSS:");
    assert!(
        sent < 32 << 20,
        "the gateway read {sent} bytes behind a held statement"
    );
    assert!(
        after < before + 16 * 1024,
        "the gateway grew from {before} to {after} KiB while a session was held"
    );
    drop((writer, held));

    // Approval requests per identity and minute: the third is not filed.
    for (i, table) in ["orders", "orders", "orders"].iter().enumerate() {
        let sql = format!("UPDATE {table} SET note = 'n{i}'");
        let mut c = Raw::login(&h, &ci);
        c.send(&[query(sql.as_bytes())]);
        if i < 2 {
            // Held: its request is filed; leave it waiting.
            std::thread::sleep(Duration::from_millis(300));
            continue;
        }
        let got = errors(&c.until_ready(1));
        assert_eq!(got.first().map(|e| e.0.as_str()), Some("53400"), "{got:?}");
        assert!(got[0].1.contains("no request filed"), "{got:?}");
    }
}

const RULES: &str = concat!(
    r#"
[limits]
max_masked_row_size = "64KiB"

"#,
    crate::app_connection!("masked-db"),
    r#"
[[connection.masking.rule]]
column = "public.customers.national_id"
strategy = "redact"
"#
);

#[test]
fn a_ruled_column_does_not_leave_through_merged_joins_or_statistics() {
    let h = Harness::with(Options {
        extra_config: RULES,
        ..Options::default()
    });
    h.cluster
        .sql(
            "app",
            "SET ROLE app_owner;
             CREATE TABLE customers (id int, national_id text);
             CREATE TABLE other (id int, national_id text);
             INSERT INTO customers SELECT g, 'QQ12345' || (g % 3) || 'C' FROM generate_series(1, 300) g;
             INSERT INTO other VALUES (1, 'nobody');
             RESET ROLE;
             ANALYZE customers;",
        )
        .unwrap();
    let agent = h.token("agent-7", &["agents"], "1h");
    // As itself the column is masked by its rule.
    let out = h.psql(
        &agent,
        "masked-db",
        "SELECT national_id FROM customers LIMIT 1",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&out).contains("QQ12345"), "{}", stdout(&out));
    for sql in [
        // 6. Merged join columns carry no origin (FULL JOIN: COALESCE).
        "SELECT national_id FROM customers FULL JOIN other USING (national_id)",
        "SELECT * FROM customers FULL JOIN other USING (national_id)",
        "SELECT * FROM customers NATURAL FULL JOIN other",
        // 4. Attribute notation: `c.to_json` is `to_json(c)`, the whole row.
        "SELECT c.to_json FROM customers c",
        "SELECT (c).row_to_json FROM customers c",
        // 9. Statistics show sample values of every analyzed column.
        "SELECT most_common_vals::text FROM pg_stats WHERE tablename = 'customers'",
        "SELECT histogram_bounds FROM pg_catalog.pg_stats",
    ] {
        let out = h.psql(&agent, "masked-db", sql);
        assert!(!out.status.success(), "{sql} ran: {}", stdout(&out));
        assert!(
            stderr(&out).contains("column masking"),
            "{sql}: {}",
            stderr(&out)
        );
        assert!(!stdout(&out).contains("QQ12345"));
    }
    // 7. Values quoted in errors: a ruled column's value is not in the
    // client's error or in the record.
    for sql in [
        "SELECT 1 FROM customers WHERE national_id::int = 0",
        "SELECT 1 FROM customers WHERE national_id::uuid IS NULL",
    ] {
        let out = h.psql(&agent, "masked-db", sql);
        assert!(!out.status.success());
        assert!(stderr(&out).contains("redacted"), "{sql}: {}", stderr(&out));
        assert!(!stderr(&out).contains("QQ12345"), "{sql}: {}", stderr(&out));
    }
    let sessions = h.ended_sessions("agent-7", 10);
    let recorded = serde_json::to_string(&sessions).unwrap()
        + &sessions
            .iter()
            .map(|s| h.session_detail(s["id"].as_str().unwrap()).to_string())
            .collect::<String>();
    assert!(recorded.contains("redacted"));
    assert!(!recorded.contains("QQ12345"), "a ruled value in a record");
    // 15. A row masking would hold whole past its limit ends the session
    // rather than pass unmasked or pile up in the gateway.
    let out = h.psql(
        &agent,
        "masked-db",
        "SELECT national_id || repeat('x', 100000) FROM customers",
    );
    assert!(!out.status.success());
    let out = h.psql(&agent, "masked-db", "SELECT repeat('x', 100000)");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("too large to mask"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn unqualified_names_are_decided_in_the_schemas_the_server_searches() {
    let h = Harness::with(Options {
        policy: Some(
            r#"
@id("connect") permit (principal, action == Gatehouse::Action::"connect", resource);
@id("public-reads") permit (principal, action == Gatehouse::Action::"select", resource is Gatehouse::Table)
when { resource.schema == "public" };
"#
            .into(),
        ),
        ..Options::default()
    });
    // The backend login's role searches a schema before public (as an
    // operator may configure it); the gateway must see that.
    h.cluster
        .sql(
            "app",
            "CREATE SCHEMA secret AUTHORIZATION app_owner;
             SET ROLE app_owner;
             CREATE TABLE secret.orders (id int, note text);
             INSERT INTO secret.orders VALUES (1, 'from the secret schema');
             CREATE TABLE public.orders (id int, note text);
             INSERT INTO public.orders VALUES (1, 'public');
             RESET ROLE;
             ALTER ROLE app_owner SET search_path = secret, public;",
        )
        .unwrap();
    let agent = h.token("agent-7", &["agents"], "1h");
    let out = h.psql(&agent, "app-db", "SELECT note FROM orders");
    assert!(!out.status.success(), "read {}", stdout(&out));
    assert!(stderr(&out).contains("secret.orders"), "{}", stderr(&out));
    assert!(!stdout(&out).contains("from the secret schema"));
    let out = h.psql(&agent, "app-db", "SELECT note FROM public.orders");
    assert_eq!(stdout(&out).trim(), "public", "{}", stderr(&out));
    // pg_catalog is searched first: an unqualified catalog view is decided as
    // what it is (here, not a public table the policy lets the agent read).
    let out = h.psql(&agent, "app-db", "SELECT count(*) FROM pg_stat_activity");
    assert!(!out.status.success(), "read {}", stdout(&out));
    assert!(
        stderr(&out).contains("pg_catalog.pg_stat_activity"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_name_the_session_made_temporary_is_decided_in_the_temporary_schema_too() {
    let h = Harness::with(Options {
        policy: Some(
            r#"
@id("connect") permit (principal, action == Gatehouse::Action::"connect", resource);
@id("ddl") permit (principal, action == Gatehouse::Action::"ddl", resource);
@id("public-reads") permit (principal, action == Gatehouse::Action::"select", resource is Gatehouse::Table)
when { resource.schema == "public" };
"#
            .into(),
        ),
        ..Options::default()
    });
    h.cluster
        .sql(
            "app",
            "CREATE TABLE public.orders (id int, note text);
             INSERT INTO public.orders VALUES (1, 'public');
             GRANT ALL ON public.orders TO app_owner;",
        )
        .unwrap();
    let agent = h.token("agent-7", &["agents"], "1h");
    // The server searches the session's temporary schema first: once the
    // session has one, `orders` may mean pg_temp.orders, and is decided so.
    let out = h
        .psql_cmd(&agent, "app-db")
        .args(["-v", "ON_ERROR_STOP=0"])
        .args(["-c", "SELECT note FROM orders"])
        .args(["-c", "CREATE TEMP TABLE orders (id int, note text)"])
        .args(["-c", "SELECT note FROM orders"])
        .output()
        .unwrap();
    let (out, err) = (stdout(&out), stderr(&out));
    assert!(out.contains("public"), "{out} {err}");
    assert!(out.contains("CREATE TABLE"), "{out} {err}");
    assert_eq!(err.matches("ERROR").count(), 1, "{err}");
    assert!(err.contains("pg_temp.orders"), "the second read: {err}");
}

#[test]
fn a_qualified_name_that_calls_a_function_is_decided_as_the_call() {
    let h = starter();
    h.cluster
        .sql(
            "app",
            "SET ROLE app_owner;
             CREATE SEQUENCE orders_id_seq;
             CREATE FUNCTION wipe(o orders) RETURNS bigint LANGUAGE sql
               AS $$ WITH d AS (DELETE FROM orders RETURNING 1) SELECT count(*) FROM d $$;",
        )
        .unwrap();
    let agent = h.token("agent-7", &["agents"], "1h");
    let seq = || {
        h.cluster
            .sql("app", "SELECT last_value FROM orders_id_seq")
            .unwrap()
    };
    let before = seq();
    for (sql, function) in [
        (
            "SELECT s.nextval FROM cast('orders_id_seq' AS regclass) s",
            "nextval",
        ),
        (
            "SELECT (cast('orders_id_seq' AS regclass)).nextval",
            "nextval",
        ),
        (
            "SELECT p.pg_terminate_backend FROM cast(1 AS int) p",
            "pg_terminate_backend",
        ),
        ("SELECT o.wipe FROM orders o", "wipe"),
    ] {
        let out = h.psql(&agent, "app-db", sql);
        assert!(!out.status.success(), "{sql} ran: {}", stdout(&out));
        let err = stderr(&out);
        assert!(
            err.contains("42501") || err.contains("permission denied"),
            "{sql}: {err}"
        );
        assert!(
            err.contains(&format!("function {function}")),
            "{sql}: {err}"
        );
    }
    assert_eq!(seq(), before, "the sequence advanced");
    assert_eq!(orders(&h), "5", "rows were deleted");
    // Qualified columns are still just columns.
    let out = h.psql(
        &agent,
        "app-db",
        "SELECT o.id, o.note FROM orders o ORDER BY o.id LIMIT 1",
    );
    assert_eq!(stdout(&out).trim(), "1|o1", "{}", stderr(&out));

    // A function created outside the gateway after the session's list was
    // read: the name is not a column of the table, nor a known function,
    // refused; also when another table has a column of that name.
    h.cluster
        .sql(
            "app",
            "CREATE TABLE audit_trail (id int, status text); GRANT ALL ON audit_trail TO app_owner;",
        )
        .unwrap();
    let mut raw = Raw::login(&h, &agent);
    h.cluster
        .sql(
            "app",
            "SET ROLE app_owner;
             CREATE FUNCTION purge(o orders) RETURNS bigint LANGUAGE sql
               AS $$ WITH d AS (DELETE FROM orders RETURNING 1) SELECT count(*) FROM d $$;
             CREATE FUNCTION status(o orders) RETURNS bigint LANGUAGE sql
               AS $$ WITH d AS (DELETE FROM orders RETURNING 1) SELECT count(*) FROM d $$;",
        )
        .unwrap();
    for (sql, name) in [
        (&b"SELECT o.purge FROM orders o"[..], "purge"),
        (&b"SELECT o.status FROM orders o"[..], "status"),
    ] {
        raw.send(&[query(sql)]);
        let got = errors(&raw.until_ready(1));
        assert!(
            got[0]
                .1
                .contains(&format!("`{name}` is neither a column nor a function")),
            "{got:?}"
        );
    }
    assert_eq!(orders(&h), "5", "rows were deleted");
    // Column names the database has are columns, as before.
    raw.send(&[query(b"SELECT o.note FROM orders o WHERE o.id = 1")]);
    let got = raw.until_ready(1);
    assert!(errors(&got).is_empty(), "{got:?}");
}

#[test]
fn a_write_behind_an_always_true_where_waits_for_approval() {
    let h = starter();
    let ci = h.token("ci-deploy", &["ci"], "1h");
    let alice = h.token("alice", &["dba-leads"], "1h");
    for sql in [
        "DELETE FROM orders WHERE true",
        "DELETE FROM orders WHERE 1=1",
        "DELETE FROM orders WHERE id IS NOT NULL OR true",
        "UPDATE orders SET note = 'x' WHERE 'a' = 'a'",
        "UPDATE orders SET note = 'x' WHERE id = id",
    ] {
        let out = h.psql(&ci, "app-db", sql);
        assert!(
            stderr(&out).contains("approval required"),
            "{sql}: {}",
            stderr(&out)
        );
    }
    assert_eq!(orders(&h), "5");
    assert_eq!(
        h.cluster
            .sql("app", "SELECT count(*) FROM orders WHERE note = 'x'")
            .unwrap(),
        "0"
    );
    // A bounded one runs; an approved unbounded one runs once.
    let out = h.psql(&ci, "app-db", "DELETE FROM orders WHERE id = 1");
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&h.psql(&ci, "app-db", "DELETE FROM orders WHERE true"));
    let at = err.find("request ").expect(&err) + 8;
    let id = err[at..at + 36].to_string();
    let out = h.cli(&["approvals", "approve", &id, "--token", &alice]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = h.psql(&ci, "app-db", "DELETE FROM orders WHERE true");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(orders(&h), "0");
}
