//! The admin CLI's rough edges: `--server` in the form `api_listen` is
//! written in, `gatehouse version`, and an API that does not answer.

mod common;

use common::*;
use std::process::{Command, Stdio};

fn gatehouse(args: &[&str], admin_key: &str) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env_remove("GATEHOUSE_CONFIG")
        .env("GATEHOUSE_ADMIN_KEY", admin_key)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn server_takes_host_port_and_a_dead_api_is_named() {
    let h = Harness::start();
    let key = std::fs::read_to_string(h.data_dir.join("admin.key")).unwrap();
    let server = format!("127.0.0.1:{}", h.api_port);
    // host:port, as [server] api_listen writes it, and a URL.
    for s in [server.clone(), format!("http://{server}/")] {
        let out = gatehouse(&["--server", &s, "token", "list"], &key);
        assert!(out.status.success(), "--server {s}: {}", stderr(&out));
    }
    let out = gatehouse(&["--server", "ftp://x", "token", "list"], &key);
    assert!(
        stderr(&out).contains("is not host:port or an http(s) URL"),
        "{}",
        stderr(&out)
    );
    // Nothing listening: said so, not a hang.
    let closed = gatehouse::pgcluster::free_port().unwrap();
    let out = gatehouse(
        &["--server", &format!("127.0.0.1:{closed}"), "token", "list"],
        &key,
    );
    assert!(
        stderr(&out).contains("cannot reach the gateway API"),
        "{}",
        stderr(&out)
    );
    // A session by a unique prefix of its id.
    let token = h.token("ci-deploy", &["ci"], "1h");
    assert!(h.psql(&token, "app-db", "SELECT 1").status.success());
    let sessions = h.ended_sessions("ci-deploy", 1);
    let id = sessions[0]["id"].as_str().unwrap();
    let shown = h.cli_ok(&["sessions", "show", &id[..8]]);
    assert!(shown.contains("SELECT 1"), "{shown}");
    let out = h.cli(&["sessions", "show", "01"]);
    assert!(stderr(&out).contains("too short"), "{}", stderr(&out));
    let out = gatehouse(&["version"], "");
    assert_eq!(
        stdout(&out).trim(),
        format!("gatehouse {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn logs_to_a_file_are_plain_text_or_json_lines() {
    let mut h = Harness::start();
    h.stop_gateway();
    let text = h.log_text();
    assert!(text.contains("INFO"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "colour codes in a log file: {text:?}"
    );
    // [server] log_format = "json": one JSON object a line.
    let config = std::fs::read_to_string(&h.config).unwrap();
    std::fs::write(
        &h.config,
        config.replacen("[server]\n", "[server]\nlog_format = \"json\"\n", 1),
    )
    .unwrap();
    std::fs::write(&h.log, "").unwrap();
    h.start_gateway();
    h.stop_gateway();
    let lines: Vec<String> = h.log_text().lines().map(str::to_string).collect();
    assert!(!lines.is_empty());
    for line in &lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{line}");
    }
}

#[test]
fn completion_scripts_are_printed_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let out = gatehouse(&["completions", shell], "");
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        let script = stdout(&out);
        for sub in ["sessions", "approvals", "policy", "completions"] {
            assert!(script.contains(sub), "{shell} script lacks {sub}");
        }
    }
    // The bash script is valid bash.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gatehouse.bash");
    std::fs::write(&file, stdout(&gatehouse(&["completions", "bash"], ""))).unwrap();
    let check = Command::new("bash").arg("-n").arg(&file).output().unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let out = gatehouse(&["completions", "tcsh"], "");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("possible values: bash"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_manual_page_is_generated_from_the_command_line() {
    let out = gatehouse(&["man"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    let page = stdout(&out);
    assert!(page.contains(".TH gatehouse 1"), "{page}");
    for sub in [
        "serve",
        "check\\-config",
        "token",
        "sessions",
        "policy",
        "approvals",
        "access",
        "audit",
        "evidence",
        "identity",
        "demo",
        "version",
        "completions",
        "man",
    ] {
        assert!(
            page.contains(&format!("gatehouse\\-{sub}(1)")),
            "{sub} missing"
        );
    }
    assert!(
        page.contains("Exit status: 0 success"),
        "exit codes documented"
    );
    let dir = tempfile::tempdir().unwrap();
    let out = gatehouse(&["man", "--out", dir.path().to_str().unwrap()], "");
    assert!(out.status.success(), "{}", stderr(&out));
    for name in [
        "gatehouse",
        "gatehouse-audit-verify",
        "gatehouse-evidence",
        "gatehouse-policy-test",
    ] {
        let text = std::fs::read_to_string(dir.path().join(format!("{name}.1"))).unwrap();
        assert!(text.contains(&format!(".TH {name} 1")), "{name}: {text}");
    }
    assert!(stderr(&out).contains("manual pages"), "{}", stderr(&out));
}

fn json_of(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_str(&stdout(out))
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}{}", stdout(out), stderr(out)))
}

#[test]
fn verdicts_and_tables_have_json_with_documented_exit_codes() {
    let mut h = Harness::start();
    let out = gatehouse(&["version", "--json"], "");
    assert_eq!(json_of(&out)["version"], env!("CARGO_PKG_VERSION"));

    // check-config: ok (0), or the problems (2).
    // (The backend password comes from the environment, as for `serve`.)
    let out = Command::new(BIN)
        .args(["check-config", "--json", "--config"])
        .arg(&h.config)
        .env("GATEHOUSE_TEST_APP_PASSWORD", &h.backend_passwords[0])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let v = json_of(&out);
    assert_eq!(v["ok"], true);
    assert_eq!(v["api_listen"], format!("127.0.0.1:{}", h.api_port));
    assert!(v["connections"].as_u64().unwrap() >= 5, "{v}");
    let bad = h.dir.path().join("bad.toml");
    std::fs::write(&bad, "[server]\nnope = 1\n").unwrap();
    let out = gatehouse(
        &["--config", bad.to_str().unwrap(), "check-config", "--json"],
        "",
    );
    assert_eq!(out.status.code(), Some(2));
    let v = json_of(&out);
    assert_eq!(v["ok"], false);
    assert!(!v["problems"].as_array().unwrap().is_empty(), "{v}");

    // policy validate (0 / 2) and policy test (0 / 1).
    let out = h.cli(&["policy", "validate", "--json"]);
    let v = json_of(&out);
    assert_eq!((out.status.code(), v["ok"].clone()), (Some(0), true.into()));
    assert_eq!(v["files"][0]["sha256"].as_str().unwrap().len(), 64);
    let broken = h.dir.path().join("broken.cedar");
    std::fs::write(
        &broken,
        "permit (principal, action, resource) when { nonsense };",
    )
    .unwrap();
    let out = h.cli(&["policy", "validate", "--json", broken.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(json_of(&out)["ok"], false);
    let cases = h.dir.path().join("cases.toml");
    std::fs::write(
        &cases,
        "[[case]]\nidentity = \"ci\"\nconnection = \"app-db\"\nsql = \"SELECT 1\"\nexpect = \"allow\"\n\n\
         [[case]]\nname = \"wrong on purpose\"\nidentity = \"ci\"\nconnection = \"app-db\"\nsql = \"SELECT 1\"\nexpect = \"deny\"\n",
    )
    .unwrap();
    let out = h.cli(&["policy", "test", "--json", cases.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let v = json_of(&out);
    assert_eq!(
        (v["passed"].as_u64(), v["failed"].as_u64()),
        (Some(1), Some(1)),
        "{v}"
    );
    assert_eq!(v["cases"][1]["name"], "wrong on purpose");
    assert_eq!(v["cases"][1]["passed"], false);
    assert_eq!(v["cases"][1]["got"], "allow");

    // policy reload through the running gateway.
    let v = json_of(&h.cli(&["policy", "reload", "--json"]));
    assert!(v["generation"].as_u64().unwrap() >= 1, "{v}");

    // The evidence log: verify, a pack, a proof.
    let token = h.token("ci-deploy", &["ci"], "1h");
    assert!(h.psql(&token, "app-db", "SELECT 1").status.success());
    h.stop_gateway();
    let out = h.cli(&["audit", "verify", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json_of(&out);
    assert_eq!(v["ok"], true);
    assert!(v["findings"].as_array().unwrap().is_empty());
    assert_eq!(v["entries"], v["verified_size"], "{v}");
    let pack = h.dir.path().join("pack");
    let out = h.cli(&[
        "evidence",
        "--from",
        "2020-01-01",
        "--to",
        "2999-01-01",
        "--out",
        pack.to_str().unwrap(),
        "--json",
    ]);
    let v = json_of(&out);
    assert_eq!(v["tree_size"], v["entries"], "{v}");
    assert!(v["complete_until"].is_string(), "the period runs on: {v}");
    let proof = pack.join("proofs/0.json");
    let key = pack.join("public-key.txt");
    let out = h.cli(&[
        "audit",
        "verify-proof",
        proof.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--json",
    ]);
    let v = json_of(&out);
    assert_eq!(
        (out.status.code(), v["ok"].clone(), v["seq"].clone()),
        (Some(0), true.into(), 0.into())
    );
    let text = std::fs::read_to_string(&proof).unwrap();
    std::fs::write(&proof, text.replacen("config_loaded", "config_unloaded", 1)).unwrap();
    let out = h.cli(&[
        "audit",
        "verify-proof",
        proof.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v = json_of(&out);
    assert_eq!(v["ok"], false);
    assert!(v["error"].is_string(), "{v}");
}
