//! kill -9 at the worst moments: under a stream of writes with a checkpoint
//! signed on every commit, and again while the gateway starts. Every write
//! psql saw acknowledged is in the table and its statement event in the
//! log; the log verifies after every round; a witness file left with a torn
//! last note is mended at start; and a log that lost signed entries (its
//! witness is ahead of it) is refused, the loss named.

mod common;

use common::*;
use std::io::Write as _;
use std::process::Stdio;
use std::time::Duration;

const EVIDENCE: &str = r#"
[evidence]
node = "gw-crash"
origin = "gatehouse.test/gw-crash"
checkpoint_every = 1
checkpoint_interval = "1s"
durability = "os"
witness_files = ["witness.notes"]
"#;

#[test]
fn kill_9_mid_checkpoint_and_at_start_up_loses_no_acknowledged_write() {
    let mut h = Harness::with(Options {
        extra_config: EVIDENCE,
        ..Options::default()
    });
    let token = h.token("ci-writer", &["ci"], "1h");
    let out = h.psql(&token, "app-db", "CREATE TABLE crash (n int)");
    assert!(out.status.success(), "{}", stderr(&out));
    let witness = h.dir.path().join("witness.notes");

    let mut acknowledged: Vec<u32> = Vec::new();
    for round in 0..5u32 {
        // A writer getting in as many inserts as it can, one per round trip.
        let first = round * 10_000;
        let script: String = (first..first + 10_000)
            .map(|n| format!("INSERT INTO crash VALUES ({n});\n"))
            .collect();
        let mut psql = h
            .psql_cmd(&token, "app-db")
            .args(["-v", "ON_ERROR_STOP=1", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = psql.stdin.take().unwrap();
        let feeder = std::thread::spawn(move || {
            let _ = stdin.write_all(script.as_bytes());
        });
        std::thread::sleep(Duration::from_millis(400 + 150 * u64::from(round)));
        h.kill_gateway();
        let out = psql.wait_with_output().unwrap();
        feeder.join().unwrap();
        let done = stdout(&out).lines().filter(|l| *l == "INSERT 0 1").count() as u32;
        assert!(
            done > 0,
            "round {round}: no insert got through: {}",
            stderr(&out)
        );
        acknowledged.extend(first..first + done);

        // Killed again while starting, at a different moment each round.
        h.spawn_gateway();
        std::thread::sleep(Duration::from_millis(30 * u64::from(round)));
        h.kill_gateway();
        if round == 3 {
            // A crash while a checkpoint was appended to the witness.
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&witness)
                .unwrap();
            f.write_all(b"gatehouse.test/gw-crash\n123\n#torn").unwrap();
        }
        h.start_gateway();
        let out = h.cli(&["audit", "verify", "--json"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "round {round}: {}",
            stdout(&out)
        );
    }
    assert!(
        h.log_text().contains("torn write"),
        "the torn witness note was mended at start"
    );
    let text = std::fs::read_to_string(&witness).unwrap();
    assert!(
        !text.contains("#torn"),
        "the torn note is gone from the witness file"
    );
    h.stop_gateway();

    // Every acknowledged insert reached the table, and was logged before it did.
    let rows = h.cluster.sql("app", "SELECT n FROM crash").unwrap();
    let in_table: std::collections::HashSet<u32> =
        rows.lines().filter_map(|l| l.trim().parse().ok()).collect();
    let exported = h.cli_ok(&["audit", "export"]);
    let logged: std::collections::HashSet<u32> = exported
        .lines()
        .filter(|l| l.contains("\"kind\":\"statement\""))
        .filter_map(|l| {
            let at = l.find("INSERT INTO crash VALUES (")? + "INSERT INTO crash VALUES (".len();
            l[at..].split(')').next()?.parse().ok()
        })
        .collect();
    for n in &acknowledged {
        assert!(
            in_table.contains(n),
            "acknowledged insert {n} is not in the table"
        );
    }
    for n in &in_table {
        assert!(
            logged.contains(n),
            "insert {n} reached the table without its statement event"
        );
    }
    let out = h.cli(&["audit", "verify", "--witness", witness.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));

    // The log loses its signed tail (restored from an older copy): the
    // witness is ahead, and the gateway will not extend it.
    let db = h.data_dir.join("evidence.db");
    let old = h.dir.path().join("evidence-old.db");
    let out = std::process::Command::new("sqlite3")
        .arg(&db)
        .arg(format!("VACUUM INTO '{}'", old.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    h.start_gateway();
    assert!(h
        .psql(&token, "app-db", "SELECT count(*) FROM crash")
        .status
        .success());
    h.stop_gateway();
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(h.data_dir.join(format!("evidence.db{suffix}")));
    }
    std::fs::copy(&old, &db).unwrap();
    let out = h.serve_expecting_failure();
    let err = stderr(&out) + &stdout(&out);
    assert!(err.contains("were lost"), "{err}");
    assert!(err.contains("witness.notes"), "{err}");
}
