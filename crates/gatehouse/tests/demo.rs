//! The newcomer's path: `gatehouse demo`, psql with the printed command,
//! masked values, a refused statement, a cancelled query, a held statement
//! approved with the approver's printed commands, the session replayed, the
//! evidence log verified and an evidence pack checked, each with the command
//! the demo printed; Ctrl-C cleans everything up.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_gatehouse");

#[test]
fn demo_runs_connects_replays_and_cleans_up() {
    let mut demo = Command::new(BIN)
        .arg("demo")
        .env_remove("GATEHOUSE_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = demo.stdout.take().unwrap();
    let guard = StopOnDrop(demo.id());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let mut printed = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !printed.iter().any(|l: &String| l.contains("Press Ctrl-C")) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => printed.push(l),
            Err(_) => {
                let _ = demo.kill();
                let out = demo.wait_with_output().unwrap();
                panic!(
                    "demo did not get ready; printed {printed:?}; stderr {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
    // The exact psql command the demo printed.
    let psql_line = printed
        .iter()
        .find(|l| l.trim_start().starts_with("PGPASSWORD="))
        .expect("a psql command is printed")
        .trim()
        .to_string();
    let config = printed
        .iter()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Configuration")
                .map(|c| c.trim().to_string())
        })
        .expect("the configuration path is printed");
    let run = |sql: &str| {
        Command::new("sh")
            .arg("-c")
            .arg(format!("{psql_line} -X -q -A -t -c \"{sql}\""))
            .output()
            .unwrap()
    };
    let out = run("select count(*) from customers");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "60");

    // The starter policy refuses writes for the demo's agent token.
    let out = run("DELETE FROM customers");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("permission denied"), "{err}");
    assert_eq!(
        String::from_utf8_lossy(&run("select count(*) from customers").stdout).trim(),
        "60"
    );

    // Cancel a long query with Ctrl-C in psql.
    let sleeper = Command::new("sh")
        .arg("-c")
        .arg(format!("exec env {psql_line} -X -c 'select pg_sleep(60)'"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the sleep runs on the backend (the demo role sees its own sessions).
    let active = "select count(*) from pg_stat_activity where state = 'active' and query like 'select pg_sleep(60)%'";
    let deadline = Instant::now() + Duration::from_secs(20);
    while String::from_utf8_lossy(&run(active).stdout).trim() == "0" {
        assert!(Instant::now() < deadline, "the sleep never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    Command::new("kill")
        .args(["-INT", &sleeper.id().to_string()])
        .status()
        .unwrap();
    let out = sleeper.wait_with_output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("canceling statement due to user request"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The sessions are recorded and replayable with the printed commands.
    let cli = |args: &[&str]| {
        let out = Command::new(BIN)
            .arg("--config")
            .arg(&config)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    // The cancelled sleep's session, once recorded as ended, replays the cancel.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let list = cli(&["sessions", "list"]);
        let ended: Vec<String> = list
            .lines()
            .skip(1)
            .filter(|l| l.contains("demo-agent") && !l.ends_with("open"))
            .map(|l| l.split_whitespace().next().unwrap().to_string())
            .collect();
        let replay = ended
            .iter()
            .map(|id| cli(&["sessions", "show", id]))
            .find(|r| r.contains("error 57014"));
        if let Some(replay) = replay {
            assert!(
                replay.contains("simple        select pg_sleep(60)"),
                "{replay}"
            );
            assert!(
                replay.contains("canceling statement due to user request"),
                "{replay}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the cancelled session was not recorded: {list}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Every other printed command runs as printed (with <ID> filled in).
    let line = |fragment: &str| -> String {
        printed
            .iter()
            .find(|l| l.contains(fragment))
            .unwrap_or_else(|| panic!("no printed line with {fragment:?}: {printed:#?}"))
            .trim()
            .to_string()
    };
    let sh = |cmd: &str| {
        Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let text = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };

    // Masking is on: detectors and a column rule.
    let masked_select =
        line("SELECT full_name, email, phone, card_number, ssn FROM customers LIMIT 3;");
    let sql = masked_select.split(';').next().unwrap();
    let out = run(sql);
    let rows = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(rows.lines().count(), 3, "{rows}");
    assert!(
        rows.contains("[masked:email]") && rows.contains("[hash:"),
        "{rows}"
    );
    assert!(
        rows.contains("**** **** **** "),
        "cards partly shown: {rows}"
    );
    assert!(!rows.contains("@example.com"), "no email in clear: {rows}");

    // The held statement waits; the approver's printed commands release it.
    let update = line("UPDATE orders SET status = 'shipped';");
    let update = update.split(';').next().unwrap().to_string();
    let held = Command::new("sh")
        .arg("-c")
        .arg(format!("{psql_line} -X -q -c \"{update}\""))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let list_cmd = line("approvals list --pending");
    let deadline = Instant::now() + Duration::from_secs(20);
    let id = loop {
        let out = sh(&list_cmd);
        assert!(out.status.success(), "{}", text(&out));
        let listed = String::from_utf8_lossy(&out.stdout).to_string();
        if let Some(l) = listed.lines().find(|l| l.contains("UPDATE orders")) {
            break l.split_whitespace().next().unwrap().to_string();
        }
        assert!(Instant::now() < deadline, "never pending: {listed}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = sh(&line("approvals approve <ID>").replace("<ID>", &id));
    assert!(
        text(&out)
            .contains("approved: the held statement was released and ran in demo-agent's session"),
        "{}",
        text(&out)
    );
    let out = held.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("waiting up to 10m for a decision"),
        "{}",
        text(&out)
    );

    // Sessions, the evidence log and a pack, with the printed commands.
    let out = sh(&line("sessions list"));
    let listed = String::from_utf8_lossy(&out.stdout).to_string();
    let session = listed
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    let out = sh(&line("sessions show <ID>").replace("<ID>", session));
    assert!(out.status.success(), "{}", text(&out));
    let out = sh(&line("audit verify"));
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("OK: no entry was edited"),
        "{}",
        text(&out)
    );
    let out = sh(&line(" evidence --from "));
    assert!(out.status.success(), "{}", text(&out));
    let out = sh(&line("verify_pack.py"));
    assert!(
        text(&out).contains("OK: the pack is unaltered and complete up to"),
        "{}",
        text(&out)
    );
    let out = sh(&line("policy explain"));
    assert!(out.status.success(), "{}", text(&out));

    // Ctrl-C stops everything and removes the temporary files.
    std::mem::forget(guard);
    Command::new("kill")
        .args(["-INT", &demo.id().to_string()])
        .status()
        .unwrap();
    let out = demo.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("Cleaned up."));
    assert!(
        !std::path::Path::new(&config).exists(),
        "the demo's files are gone"
    );
}

/// If the test fails midway, Ctrl-C the demo so it removes its PostgreSQL.
struct StopOnDrop(u32);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.0.to_string()])
            .status();
        std::thread::sleep(Duration::from_secs(3));
    }
}
