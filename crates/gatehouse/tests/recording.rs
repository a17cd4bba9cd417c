//! Sessions and statements are recorded, replayable with `gatehouse sessions`,
//! and no secret (backend password, token, admin key) lands in logs or the store.

mod common;

use common::*;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_and_statements_are_recorded_and_replayed() {
    let mut h = Harness::start();
    let token = h.token("rec-agent", &["agents", "readers"], "1h");
    {
        let c = h.connect(&token, "app-db").await.unwrap();
        c.simple_query("create table kv (k text primary key, v int)")
            .await
            .unwrap();
        let ins = c.prepare("insert into kv values ($1, $2)").await.unwrap();
        c.execute(&ins, &[&"alpha", &1i32]).await.unwrap();
        c.execute(&ins, &[&"beta", &2i32]).await.unwrap();
        let rows = c
            .query("select k, v from kv where v >= $1 order by k", &[&1i32])
            .await
            .unwrap();
        assert_eq!(rows.len(), 2);
        assert!(c.simple_query("select 1/0").await.is_err());
        c.simple_query("select pg_sleep(0.05)").await.unwrap();
    }
    // psql in a second session to the same connection, ended with \q (Terminate).
    let out = h.psql(&token, "app-db", "select count(*) from kv");
    assert_eq!(stdout(&out), "2");

    let sessions = h.ended_sessions("rec-agent", 2);
    // Newest first: the psql session, then the tokio-postgres one.
    assert_eq!(sessions[0]["application_name"], "psql");
    let s = &sessions[1];
    assert_eq!(s["application_name"], "gatehouse-e2e");
    assert_eq!(s["connection"], "app-db");
    assert_eq!(s["protocol"], "postgres");
    assert_eq!(s["client_user"], "tester");
    assert_eq!(s["identity"]["subject"], "rec-agent");
    assert_eq!(
        s["identity"]["groups"],
        serde_json::json!(["agents", "readers"])
    );
    assert_eq!(s["identity"]["source"]["kind"], "service_token");
    assert!(s["client_addr"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert_eq!(s["end"]["reason"], "client_terminated");
    assert!(s["end"]["bytes_from_client"].as_u64().unwrap() > 100);
    assert!(s["end"]["bytes_to_client"].as_u64().unwrap() > 100);

    let id = s["id"].as_str().unwrap();
    let detail = h.session_detail(id);
    let st = detail["statements"].as_array().unwrap();
    let texts: Vec<&str> = st.iter().map(|x| x["text"].as_str().unwrap()).collect();
    assert_eq!(
        texts,
        vec![
            "create table kv (k text primary key, v int)",
            "insert into kv values ($1, $2)",
            "insert into kv values ($1, $2)",
            "select k, v from kv where v >= $1 order by k",
            "select 1/0",
            "select pg_sleep(0.05)",
        ],
        "every statement, in order (tokio-postgres' internal prepares are not statements)"
    );
    let seqs: Vec<u64> = st.iter().map(|x| x["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(st[0]["protocol"], "simple");
    assert_eq!(st[0]["outcome"]["command_tag"], "CREATE TABLE");
    assert_eq!(st[1]["protocol"], "extended");
    // tokio-postgres sends parameters in binary: text is "\x" + hex of the bytes.
    assert_eq!(
        st[1]["params"],
        serde_json::json!(["\\x616c706861", "\\x00000001"])
    );
    assert_eq!(st[2]["params"][0], "\\x62657461");
    assert_eq!(st[1]["outcome"]["command_tag"], "INSERT 0 1");
    assert_eq!(st[3]["outcome"]["rows"], 2);
    assert_eq!(st[4]["outcome"]["status"], "error");
    assert_eq!(st[4]["outcome"]["sqlstate"], "22012");
    assert_eq!(st[4]["outcome"]["message"], "division by zero");
    assert!(
        st[5]["duration_us"].as_u64().unwrap() >= 50_000,
        "the sleep's duration is measured"
    );

    // Text replay.
    let replay = h.cli_ok(&["sessions", "show", id]);
    assert!(
        replay.contains("rec-agent (groups: agents, readers"),
        "{replay}"
    );
    assert!(
        replay.contains("select k, v from kv where v >= $1 order by k"),
        "{replay}"
    );
    assert!(replay.contains("error 22012: division by zero"), "{replay}");
    assert!(replay.contains("ok  INSERT 0 1 (1 row)"), "{replay}");
    assert!(replay.contains("client_terminated"), "{replay}");

    // Filters.
    let by_conn = h.cli_ok(&["sessions", "list", "--connection", "md5-db", "--json"]);
    assert_eq!(
        serde_json::from_str::<Vec<Value>>(&by_conn).unwrap().len(),
        0
    );
    let table = h.cli_ok(&["sessions", "list", "--identity", "rec-agent"]);
    assert_eq!(table.lines().count(), 3, "header and two sessions: {table}");
    let out = h.cli(&["sessions", "show", "not-a-session"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("is not a session id"),
        "{}",
        stderr(&out)
    );

    // A client killed mid-statement is recorded with the statement incomplete.
    let mut child = h
        .psql_cmd(&token, "app-db")
        .args(["-c", "select pg_sleep(30)"])
        .spawn()
        .unwrap();
    h.wait_until_running("select pg_sleep(30)");
    child.kill().unwrap();
    child.wait().unwrap();
    let s = h.ended_sessions("rec-agent", 3);
    let d = h.session_detail(s[0]["id"].as_str().unwrap());
    assert_eq!(d["end"]["reason"], "client_disconnected");
    assert_eq!(d["statements"][0]["outcome"]["status"], "incomplete");

    // Nothing secret anywhere: logs, store files, CLI output.
    let admin_key = std::fs::read_to_string(h.data_dir.join("admin.key")).unwrap();
    let token_secret = token.rsplit('_').next().unwrap().to_string();
    h.stop_gateway();
    let log = h.log_text();
    assert!(
        log.contains("session started"),
        "the log is the gateway's: {log}"
    );
    let mut haystacks: Vec<(String, Vec<u8>)> = vec![("gateway log".into(), log.into_bytes())];
    for (path, bytes) in h.data_dir_files() {
        if path.ends_with("admin.key") || path.extension().is_some_and(|e| e == "key") {
            continue;
        }
        haystacks.push((path.display().to_string(), bytes));
    }
    haystacks.push(("session json".into(), serde_json::to_vec(&detail).unwrap()));
    let needles: Vec<(&str, &str)> = h
        .backend_passwords
        .iter()
        .map(|p| ("backend password", p.as_str()))
        .chain([
            ("token secret", token_secret.as_str()),
            ("admin key", admin_key.trim()),
        ])
        .collect();
    for (what, bytes) in &haystacks {
        for (kind, needle) in &needles {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{kind} found in {what}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_commands_need_the_admin_key_and_a_running_gateway() {
    let mut h = Harness::start();
    // A wrong key from the environment is refused by the API.
    let out = std::process::Command::new(BIN)
        .args(["--config"])
        .arg(&h.config)
        .args(["token", "list"])
        .env("GATEHOUSE_ADMIN_KEY", "gatehouse_admin_wrong")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("admin key not accepted"),
        "{}",
        stderr(&out)
    );
    // Bad arguments are answered clearly.
    let out = h.cli(&["token", "create", "--identity", "has space"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("invalid identity"),
        "{}",
        stderr(&out)
    );
    let out = h.cli(&["token", "create", "--identity", "x", "--ttl", "soon"]);
    assert!(stderr(&out).contains("--ttl"), "{}", stderr(&out));
    let out = h.cli(&["token", "create", "--identity", "x", "--ttl", "400d"]);
    assert!(stderr(&out).contains("366 days"), "{}", stderr(&out));
    // Without a gateway, the CLI says how to fix it.
    h.stop_gateway();
    let out = h.cli(&["token", "list"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("is `gatehouse serve` running?"),
        "{}",
        stderr(&out)
    );
}
