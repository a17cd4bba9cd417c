//! The newcomer's path: `gatehouse demo`, psql with the printed command,
//! a cancelled query, the session replayed, Ctrl-C cleans everything up.

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
