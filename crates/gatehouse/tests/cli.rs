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
