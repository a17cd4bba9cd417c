//! The evidence log end to end: a real gateway writes it while psql and
//! tokio-postgres work through it; `gatehouse audit` verifies, proves and
//! exports it; sqlite3 tampers with the real file; kill -9 under load.

mod common;

use common::*;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const POLICY: &str = "@id(\"allow-all\")\npermit (principal, action, resource);\n\
    @id(\"no-delete\")\nforbid (principal, action == Gatehouse::Action::\"delete\", resource);\n";

const EVIDENCE: &str = r#"
[evidence]
node = "gw-test"
origin = "gatehouse.test/gw-test"
checkpoint_every = 8
checkpoint_interval = "1s"
witness_files = ["witness.notes"]
"#;

fn harness() -> Harness {
    Harness::with(Options {
        policy: Some(POLICY.into()),
        extra_config: EVIDENCE,
        ..Options::default()
    })
}

fn log_file(h: &Harness) -> PathBuf {
    h.data_dir.join("evidence.db")
}

fn witness_file(h: &Harness) -> PathBuf {
    h.dir.path().join("witness.notes")
}

/// Runs sqlite3 on `db`, as an engineer with access to the file would.
fn sqlite(db: &Path, sql: &str) -> String {
    let out = Command::new("sqlite3").arg(db).arg(sql).output().unwrap();
    assert!(out.status.success(), "sqlite3 {sql}: {}", stderr(&out));
    stdout(&out)
}

fn export(h: &Harness, format: &str, log: Option<&Path>) -> Vec<String> {
    let mut args = vec!["audit", "export", "--format", format];
    let l;
    if let Some(p) = log {
        l = p.display().to_string();
        args.extend(["--log", &l]);
    }
    h.cli_ok(&args).lines().map(str::to_string).collect()
}

fn events(h: &Harness) -> Vec<Value> {
    h.evidence_events()
}

/// `audit verify` on a copy of the log: exit code and output.
fn verify(h: &Harness, log: &Path, witness: bool) -> (bool, String) {
    let key = h.cli_ok(&["audit", "public-key"]).trim().to_string();
    let l = log.display().to_string();
    let w = witness_file(h).display().to_string();
    let mut args = vec!["audit", "verify", "--log", &l, "--key", &key];
    if witness {
        args.extend(["--witness", &w]);
    }
    let out = h.cli(&args);
    (out.status.success(), stdout(&out))
}

/// Tampers with a copy of the log through sqlite3; verification (without a
/// witness) must fail; returns its report.
fn tampered(h: &Harness, name: &str, sql: &str) -> String {
    let f = copy_of(h, name);
    sqlite(&f, sql);
    let (ok, text) = verify(h, &f, false);
    assert!(!ok, "{name}: verification passed: {text}");
    text
}

/// A copy of the log file to tamper with.
fn copy_of(h: &Harness, name: &str) -> PathBuf {
    let to = h.dir.path().join(name);
    std::fs::copy(log_file(h), &to).unwrap();
    to
}

#[test]
fn the_log_records_every_event_and_verifies() {
    let mut h = harness();
    let token = h.token("ci-deploy", &["ci"], "1h");
    let out = h.psql(&token, "app-db", "CREATE TABLE t (id int, note text)");
    assert!(out.status.success(), "{}", stderr(&out));
    let out = h.psql(&token, "app-db", "INSERT INTO t VALUES (1, 'one')");
    assert!(out.status.success(), "{}", stderr(&out));
    let out = h.psql(&token, "app-db", "DELETE FROM t");
    assert!(!out.status.success(), "delete is forbidden");
    let out = h.psql("gatehouse_st_0000000000000000_wrong", "app-db", "SELECT 1");
    assert!(!out.status.success());
    let id = token.split('_').nth(2).unwrap().to_string();
    h.cli_ok(&["token", "revoke", &id]);
    h.stop_gateway();

    // Verification passes against the store and the witness copy.
    let out = h.cli(&["audit", "verify"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(text.contains("OK: no entry was edited"), "{text}");
    assert!(text.contains("witness file"), "{text}");

    let evs = events(&h);
    let kinds: Vec<&str> = evs.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    for k in [
        "config_loaded",
        "policy_loaded",
        "gateway_started",
        "token_created",
        "auth_success",
        "auth_failure",
        "session_start",
        "statement",
        "statement_result",
        "session_end",
        "token_revoked",
        "gateway_stopped",
    ] {
        assert!(kinds.contains(&k), "no {k} event in {kinds:?}");
    }
    // Numbered from 0 without gaps, linked, each covered by a checkpoint after the final one.
    for (i, e) in evs.iter().enumerate() {
        assert_eq!(e["seq"], i as u64);
        assert_eq!(e["node"], "gw-test");
        assert!(e["integrity"]["checkpoint"]["size"].as_u64().unwrap() > i as u64);
    }
    let policy = evs.iter().find(|e| e["kind"] == "policy_loaded").unwrap();
    let sha = policy["payload"]["files"][0]["sha256"].as_str().unwrap();
    assert_eq!(sha.len(), 64);
    let config = evs.iter().find(|e| e["kind"] == "config_loaded").unwrap();
    assert_eq!(config["payload"]["sha256"].as_str().unwrap().len(), 64);

    // The denied statement: decided, logged with its policy, and its result after it.
    let denied = evs
        .iter()
        .find(|e| e["kind"] == "statement" && e["payload"]["text"] == "DELETE FROM t")
        .expect("the DELETE is logged");
    assert_eq!(denied["payload"]["decision"]["decision"], "deny");
    assert_eq!(denied["payload"]["decision"]["policies"][0], "no-delete");
    assert_eq!(denied["payload"]["identity"], "ci-deploy");
    let session = denied["payload"]["session"].as_str().unwrap();
    let result = evs
        .iter()
        .find(|e| {
            e["kind"] == "statement_result"
                && e["payload"]["session"] == session
                && e["payload"]["seq"] == denied["payload"]["seq"]
        })
        .expect("the DELETE's result is logged");
    assert!(result["seq"].as_u64() > denied["seq"].as_u64());
    assert_eq!(result["payload"]["sqlstate"], "42501");
    let start = evs
        .iter()
        .position(|e| e["kind"] == "session_start" && e["payload"]["session"] == session)
        .unwrap();
    assert!((start as u64) < denied["seq"].as_u64().unwrap());
    let failure = evs.iter().find(|e| e["kind"] == "auth_failure").unwrap();
    assert_eq!(failure["payload"]["stage"], "credential");

    // No secret anywhere in the log file: not the token, not a backend password.
    let bytes = std::fs::read(log_file(&h)).unwrap();
    let hay = String::from_utf8_lossy(&bytes);
    let secret = token.rsplit('_').next().unwrap();
    assert!(!hay.contains(secret), "the token's secret is in the log");
    for pw in &h.backend_passwords {
        assert!(
            !hay.contains(pw.as_str()),
            "a backend password is in the log"
        );
    }

    // An inclusion proof checks offline with only the public key, and a changed one fails.
    let key = h.cli_ok(&["audit", "public-key"]).trim().to_string();
    assert!(key.starts_with("gatehouse.test/gw-test+"), "{key}");
    let proof = h.dir.path().join("proof.json");
    let seq = denied["seq"].as_u64().unwrap().to_string();
    h.cli_ok(&["audit", "proof", &seq, "--out", proof.to_str().unwrap()]);
    let out = h.cli(&[
        "audit",
        "verify-proof",
        proof.to_str().unwrap(),
        "--key",
        &key,
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains(&format!("OK: entry {seq} (statement")));
    let text = std::fs::read_to_string(&proof).unwrap();
    std::fs::write(&proof, text.replace("DELETE FROM t", "SELECT 1 FROM t")).unwrap();
    let out = h.cli(&[
        "audit",
        "verify-proof",
        proof.to_str().unwrap(),
        "--key",
        &key,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("FAILED"), "{}", stdout(&out));

    check_ocsf(&export(&h, "ocsf", None), evs.len());
    check_cef(&export(&h, "cef", None), evs.len());

    // --since/--until select by time.
    let out = h.cli_ok(&["audit", "export", "--since", "2999-01-01"]);
    assert!(out.is_empty());
    let out = h.cli(&["audit", "export", "--since", "yesterday"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--since"), "{}", stderr(&out));
}

/// Required attributes of the OCSF 1.3.0 classes used, checked on every event.
fn check_ocsf(lines: &[String], n: usize) {
    assert_eq!(lines.len(), n);
    let base = [
        "activity_id",
        "category_uid",
        "class_uid",
        "metadata",
        "severity_id",
        "time",
        "type_uid",
    ];
    let by_class: HashMap<u64, &[&str]> = HashMap::from([
        (3002u64, &["user", "src_endpoint", "service"][..]),
        (6005u64, &["actor", "src_endpoint", "database"][..]),
        (0u64, &[][..]),
    ]);
    let mut classes = BTreeSet::new();
    for l in lines {
        let e: Value = serde_json::from_str(l).unwrap();
        for k in base {
            assert!(!e[k].is_null(), "OCSF event without {k}: {l}");
        }
        let class = e["class_uid"].as_u64().unwrap();
        classes.insert(class);
        for k in by_class
            .get(&class)
            .unwrap_or_else(|| panic!("class {class}"))
            .iter()
        {
            assert!(!e[*k].is_null(), "class {class} without {k}: {l}");
        }
        assert_eq!(e["category_uid"].as_u64().unwrap(), class / 1000);
        assert_eq!(
            e["type_uid"].as_u64().unwrap(),
            class * 100 + e["activity_id"].as_u64().unwrap()
        );
        assert!(e["time"].as_i64().unwrap() > 1_700_000_000_000);
        assert_eq!(e["metadata"]["version"], "1.3.0");
        assert!(!e["metadata"]["product"]["name"].is_null());
        let integrity = &e["unmapped"]["gatehouse"]["integrity"];
        assert_eq!(integrity["leaf_hash"].as_str().unwrap().len(), 64);
        assert_eq!(e["metadata"]["sequence"], integrity["seq"]);
        if class == 3002 {
            // Named, but for a credential refused before anyone was known:
            // then an unknown user (type 0), not a made-up name.
            let unknown_login = e["metadata"]["event_code"] == "auth_failure"
                && e["unmapped"]["gatehouse"]["payload"]["subject"].is_null();
            assert!(
                !e["user"]["name"].is_null()
                    || (unknown_login && e["user"]["account"]["type_id"] == 0),
                "{l}"
            );
        }
        if class == 6005 {
            assert!(!e["actor"]["user"]["name"].is_null());
            // Known from the session's start, never made up.
            assert_ne!(e["actor"]["user"]["name"], "unknown", "{l}");
            assert_ne!(e["database"]["name"], "Gatehouse", "{l}");
        }
        if let Some(ip) = e["src_endpoint"].get("ip") {
            let ip = ip.as_str().unwrap_or("");
            assert!(ip.parse::<std::net::IpAddr>().is_ok(), "not an IP: {l}");
        }
    }
    assert!(
        classes.contains(&3002) && classes.contains(&6005),
        "{classes:?}"
    );
}

/// Every CEF line has the 7 header fields and well-formed key=value extensions.
fn check_cef(lines: &[String], n: usize) {
    assert_eq!(lines.len(), n);
    for l in lines {
        let (header, ext) = split_cef(l);
        assert_eq!(header.len(), 7, "{l}");
        assert_eq!(header[0], "CEF:0");
        assert_eq!(header[1], "Gatehouse");
        assert!(header[6].parse::<u8>().unwrap() <= 10);
        let ext = parse_cef_extension(ext);
        for k in ["rt", "cn1", "cs1", "outcome"] {
            assert!(ext.contains_key(k), "CEF line without {k}: {l}");
        }
        assert_eq!(ext["cs1"].len(), 64);
    }
    let with_text = lines
        .iter()
        .find(|l| l.contains("request=DELETE FROM t"))
        .expect("the DELETE's CEF line");
    assert!(with_text.contains("act=deny"), "{with_text}");
}

/// Splits a CEF line into its 7 header fields (unescaping \| and \\) and the extension.
fn split_cef(line: &str) -> (Vec<String>, &str) {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut chars = line.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                if let Some((_, n)) = chars.next() {
                    cur.push(n);
                }
            }
            '|' => {
                fields.push(std::mem::take(&mut cur));
                if fields.len() == 7 {
                    return (fields, &line[i + 1..]);
                }
            }
            c => cur.push(c),
        }
    }
    panic!("not a CEF line: {line}");
}

/// Parses `k=v k=v` where values may hold spaces and escaped `=`.
fn parse_cef_extension(ext: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut tokens: Vec<(String, String)> = Vec::new();
    for word in ext.split(' ') {
        // A new key starts where an unescaped '=' follows a plain key name.
        let key_end = word.find('=').filter(|&i| {
            i > 0
                && !word[..i].ends_with('\\')
                && word[..i].chars().all(|c| c.is_ascii_alphanumeric())
        });
        match key_end {
            Some(i) => tokens.push((word[..i].to_string(), word[i + 1..].to_string())),
            None => {
                let last = tokens.last_mut().expect("extension starts with a key");
                last.1.push(' ');
                last.1.push_str(word);
            }
        }
    }
    for (k, v) in tokens {
        assert!(!v.contains('\n'));
        out.insert(k, v.replace("\\=", "=").replace("\\\\", "\\"));
    }
    out
}

#[test]
fn tampering_with_the_store_file_is_detected_and_named() {
    let mut h = harness();
    let token = h.token("ci-deploy", &["ci"], "1h");
    for i in 0..6 {
        let out = h.psql(&token, "app-db", &format!("SELECT {i} AS n"));
        assert!(out.status.success(), "{}", stderr(&out));
    }
    h.stop_gateway();
    let (ok, text) = verify(&h, &log_file(&h), true);
    assert!(ok, "{text}");
    let n: u64 = sqlite(&log_file(&h), "SELECT COUNT(*) FROM entries")
        .parse()
        .unwrap();
    assert!(n > 20, "{n} entries");

    // One byte of one entry.
    let seq = sqlite(
        &log_file(&h),
        "SELECT seq FROM entries WHERE CAST(bytes AS TEXT) LIKE '%SELECT 3 AS n%' AND CAST(bytes AS TEXT) LIKE '%\"kind\":\"statement\"%'",
    );
    let text = tampered(
        &h,
        "edited.db",
        &format!("UPDATE entries SET bytes = CAST(replace(CAST(bytes AS TEXT), 'SELECT 3', 'SELECT 4') AS BLOB) WHERE seq = {seq}"),
    );
    assert!(
        text.contains(&format!("FOUND: entry {seq} was edited")),
        "{text}"
    );

    // A deleted entry.
    let text = tampered(&h, "deleted.db", "DELETE FROM entries WHERE seq = 5");
    assert!(text.contains("FOUND: entry 5 was deleted"), "{text}");

    // Two entries swapped in storage.
    let text = tampered(
        &h,
        "swapped.db",
        "UPDATE entries SET position = -1 WHERE seq = 3; \
         UPDATE entries SET position = 4 WHERE seq = 4; \
         UPDATE entries SET position = 5 WHERE seq = 3;",
    );
    assert!(
        text.contains("FOUND: entries 4 and 3 are stored out of order"),
        "{text}"
    );

    // An entry inserted (a copy of entry 2, appended).
    let text = tampered(
        &h,
        "inserted.db",
        "INSERT INTO entries (seq, bytes) SELECT seq, bytes FROM entries WHERE seq = 2",
    );
    assert!(text.contains("sequence number 2 is used twice"), "{text}");

    // The tail cut, checkpoints left: the store's own checkpoints catch it.
    let cut = n - 4;
    let text = tampered(
        &h,
        "cut.db",
        &format!("DELETE FROM entries WHERE seq >= {cut}"),
    );
    assert!(
        text.contains(&format!("the log holds {cut}; entries {cut} to {}", n - 1)),
        "{text}"
    );

    // The tail cut with the checkpoints that cover it: only a witness copy catches it.
    let f = copy_of(&h, "cut-clean.db");
    sqlite(
        &f,
        &format!(
            "DELETE FROM entries WHERE seq >= {cut}; DELETE FROM checkpoints WHERE size > {cut}"
        ),
    );
    let (ok, text) = verify(&h, &f, false);
    assert!(ok, "without a witness the cut is invisible: {text}");
    let (ok, text) = verify(&h, &f, true);
    assert!(!ok);
    assert!(
        text.contains("FOUND: the log was truncated: a checkpoint (witness"),
        "{text}"
    );

    // A checkpoint's signature replaced.
    let f = copy_of(&h, "resigned.db");
    let note = sqlite(
        &f,
        "SELECT note FROM checkpoints ORDER BY position DESC LIMIT 1",
    );
    let (body, sig) = note.rsplit_once(' ').unwrap();
    let mut forged = sig.as_bytes().to_vec();
    forged[10] = if forged[10] == b'A' { b'B' } else { b'A' };
    let forged = format!("{body} {}\n", String::from_utf8(forged).unwrap());
    sqlite(
        &f,
        &format!(
            "UPDATE checkpoints SET note = '{}' WHERE position = (SELECT MAX(position) FROM checkpoints)",
            forged.replace('\'', "''")
        ),
    );
    let (ok, text) = verify(&h, &f, false);
    assert!(!ok);
    assert!(
        text.contains("FOUND: a checkpoint (store) does not verify"),
        "{text}"
    );

    // A gateway resumes from its newest checkpoint's stored state (reading
    // only what came after it), and does not extend a log whose state, or
    // whose entries at and after that checkpoint, are not as signed: it
    // refuses to start and says why. (Damage to what the checkpoint covers
    // is `audit verify`'s to find, as above: new checkpoints extend the
    // signed state and never sign over it.)
    let last = n - 1;
    let edited_last = tampered(
        &h,
        "edited-last.db",
        &format!(
            "UPDATE entries SET bytes = CAST(replace(CAST(bytes AS TEXT), '\"time\":\"20', '\"time\":\"19') AS BLOB) WHERE seq = {last}"
        ),
    );
    assert!(!edited_last.is_empty());
    let forged_state = copy_of(&h, "forged-state.db");
    sqlite(
        &forged_state,
        "UPDATE checkpoints SET state = zeroblob(length(state)) WHERE position = (SELECT MAX(position) FROM checkpoints)",
    );
    // An older checkpoint copied to the end, the entries after it removed:
    // the largest checkpoint is the newest, wherever it is stored.
    let replayed = copy_of(&h, "replayed.db");
    sqlite(
        &replayed,
        "INSERT INTO checkpoints (size, note, state) SELECT size, note, state FROM checkpoints \
         WHERE state IS NOT NULL ORDER BY size LIMIT 1; \
         DELETE FROM entries WHERE seq >= (SELECT MIN(size) FROM checkpoints WHERE state IS NOT NULL)",
    );
    // A copy of an entry stored last under a small number (never read by number).
    let refiled = copy_of(&h, "refiled.db");
    sqlite(
        &refiled,
        "INSERT INTO entries (seq, bytes) SELECT 0, bytes FROM entries WHERE seq = 3",
    );
    for (file, why) in [
        (
            h.dir.path().join("edited-last.db"),
            format!("entry {last}, the last the newest checkpoint signs, is not as signed"),
        ),
        (
            forged_state,
            "the state stored with the newest checkpoint".to_string(),
        ),
        (
            replayed,
            format!("entry {last}, the last the newest checkpoint signs, is missing"),
        ),
        (refiled, "rows are stored after entry".to_string()),
    ] {
        std::fs::copy(&file, log_file(&h)).unwrap();
        let _ = std::fs::remove_file(h.data_dir.join("evidence.db-wal"));
        let _ = std::fs::remove_file(h.data_dir.join("evidence.db-shm"));
        let err = stderr(&h.serve_expecting_failure());
        assert!(err.contains(&why) && err.contains("audit verify"), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_dash_nine_under_load_loses_no_acknowledged_statement() {
    let mut h = harness();
    h.cluster
        .sql(
            "app",
            "CREATE TABLE crash (id int); GRANT ALL ON crash TO app_owner",
        )
        .unwrap();
    let token = h.token("loader", &[], "1h");
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(h.connect(&token, "app-db").await.unwrap());
    }
    let stop = std::time::Instant::now() + std::time::Duration::from_millis(1500);
    let mut tasks = Vec::new();
    for (w, c) in clients.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0.. {
                let id = w * 1_000_000 + i;
                match c
                    .simple_query(&format!("INSERT INTO crash VALUES ({id})"))
                    .await
                {
                    Ok(_) => acked.push(id),
                    Err(_) => break,
                }
            }
            acked
        }));
    }
    while std::time::Instant::now() < stop {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    h.kill_gateway();
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    assert!(
        acked.len() > 50,
        "only {} statements ran before the kill",
        acked.len()
    );

    // Restarted, the gateway seals the tail, and the log verifies.
    h.start_gateway();
    h.stop_gateway();
    let out = h.cli(&["audit", "verify"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));

    // Every statement the database ran (and so every acknowledged one) is in the log.
    let logged: BTreeSet<String> = events(&h)
        .into_iter()
        .filter(|e| e["kind"] == "statement")
        .map(|e| e["payload"]["text"].as_str().unwrap().to_string())
        .collect();
    let ran = h.cluster.sql("app", "SELECT id FROM crash").unwrap();
    let ran: Vec<&str> = ran.lines().collect();
    assert!(ran.len() >= acked.len());
    for id in &ran {
        let text = format!("INSERT INTO crash VALUES ({id})");
        assert!(logged.contains(&text), "{text} ran but is not in the log");
    }
    for id in &acked {
        assert!(logged.contains(&format!("INSERT INTO crash VALUES ({id})")));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_that_cannot_be_written_refuses_the_statement() {
    let h = harness();
    h.cluster
        .sql(
            "app",
            "CREATE TABLE held (id int); GRANT ALL ON held TO app_owner",
        )
        .unwrap();
    let token = h.token("ci-deploy", &[], "1h");
    let client = h.connect(&token, "app-db").await.unwrap();
    client.simple_query("SELECT 1").await.unwrap();
    let reader = h.connect(&token, "app-db").await.unwrap();
    reader.simple_query("SELECT 1").await.unwrap();

    // Another process takes the log's write lock and keeps it; it says
    // `locked` once it holds it.
    let mut locker = Command::new("sqlite3")
        .arg(log_file(&h))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = locker.stdin.take().unwrap();
    stdin
        // The gateway may be committing: wait for the lock rather than fail.
        .write_all(b".timeout 10000\n.bail on\nBEGIN EXCLUSIVE;\nSELECT 'locked';\n")
        .unwrap();
    stdin.flush().unwrap();
    let mut said = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(locker.stdout.take().unwrap()),
        &mut said,
    )
    .unwrap();
    assert_eq!(said.trim(), "locked");

    // A read runs while its event is written, but its answer waits for the
    // event: it never comes, and neither does the row.
    let e = reader
        .simple_query("SELECT 'hunter2' AS secret")
        .await
        .expect_err("the log cannot be written, so the answer is not sent");
    assert_eq!(sqlstate(&e), "58030", "{e:?}");
    assert!(!format!("{e:?}").contains("hunter2"), "{e:?}");

    let e = client
        .simple_query("INSERT INTO held VALUES (1)")
        .await
        .expect_err("the log cannot be written");
    assert_eq!(sqlstate(&e), "58030", "{e:?}");
    assert!(message(&e).contains("evidence log"), "{}", message(&e));
    drop(stdin);
    locker.wait().unwrap();
    // Nothing reached the database.
    assert_eq!(
        h.cluster.sql("app", "SELECT count(*) FROM held").unwrap(),
        "0"
    );

    // Once the log can be written again, so can statements.
    let client = h.connect(&token, "app-db").await.unwrap();
    client
        .simple_query("INSERT INTO held VALUES (2)")
        .await
        .unwrap();
    assert_eq!(
        h.cluster.sql("app", "SELECT count(*) FROM held").unwrap(),
        "1"
    );
}

#[test]
fn checkpoints_reach_an_http_witness() {
    let witness = common::http::HttpReceiver::start(0, 0);
    let port = witness.port;
    let config: &'static str = Box::leak(
        format!(
            "[evidence]\nnode = \"gw-http\"\ncheckpoint_every = 4\nwitness_urls = [\"http://127.0.0.1:{port}/checkpoints\"]\n"
        )
        .into_boxed_str(),
    );
    let mut h = Harness::with(Options {
        extra_config: config,
        ..Options::default()
    });
    let token = h.token("ci-deploy", &[], "1h");
    let out = h.psql(&token, "app-db", "SELECT 1");
    assert!(out.status.success(), "{}", stderr(&out));
    h.stop_gateway();

    // What the witness received verifies as witness copies of this log.
    let received = witness.received();
    assert!(received.iter().all(|r| r.path == "/checkpoints"));
    let notes: Vec<String> = received.into_iter().map(|r| r.body).collect();
    let notes = notes.join("\n");
    assert!(!notes.is_empty(), "the witness received nothing");
    let copy = h.dir.path().join("received.notes");
    std::fs::write(&copy, &notes).unwrap();
    let out = h.cli(&["audit", "verify", "--witness", copy.to_str().unwrap()]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    // The final checkpoint, covering every entry, was delivered at the stop.
    let n = events(&h).len();
    assert!(
        notes.contains(&format!("gatehouse/gw-http\n{n}\n")),
        "no checkpoint of size {n} in {notes}"
    );
}
