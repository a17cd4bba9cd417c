//! Live evidence sinks end to end: a real gateway feeds an HTTP endpoint
//! and a syslog (RFC 5424 over TCP) receiver, both written here as plain
//! sockets so the test sees exactly what goes over the wire. Both are down
//! first (nothing listens), then the HTTP one refuses twice with 503; every
//! event still arrives exactly once, in order, across the outage and a
//! gateway restart.

mod common;

use common::*;
use gatehouse::pgcluster::free_port;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

const POLICY: &str = "@id(\"allow-all\")\npermit (principal, action, resource);\n\
    @id(\"no-delete\")\nforbid (principal, action == Gatehouse::Action::\"delete\", resource);\n";

/// A syslog receiver over TCP with RFC 6587 octet counting: `LEN SP MSG`.
fn syslog_receiver(port: u16) -> Arc<Mutex<Vec<String>>> {
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let messages = Arc::new(Mutex::new(Vec::new()));
    let kept = messages.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let kept = kept.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream);
                loop {
                    let mut len = Vec::new();
                    if reader.read_until(b' ', &mut len).unwrap_or(0) == 0 {
                        return;
                    }
                    let len: usize = std::str::from_utf8(&len[..len.len() - 1])
                        .unwrap()
                        .parse()
                        .expect("an octet count");
                    let mut msg = vec![0; len];
                    reader.read_exact(&mut msg).unwrap();
                    kept.lock().unwrap().push(String::from_utf8(msg).unwrap());
                }
            });
        }
    });
    messages
}

/// Runs a few statements, one of them refused.
fn work(h: &Harness, token: &str) {
    for sql in [
        "SELECT 1",
        "CREATE TABLE IF NOT EXISTS sink_t (id int)",
        "INSERT INTO sink_t VALUES (1)",
    ] {
        let out = h.psql(token, "app-db", sql);
        assert!(out.status.success(), "{sql}: {}", stderr(&out));
    }
    let out = h.psql(token, "app-db", "DELETE FROM sink_t WHERE id = 1");
    assert!(!out.status.success(), "the DELETE should be refused");
}

#[test]
fn sinks_receive_every_event_once_across_an_outage_and_a_restart() {
    let (http_port, syslog_port) = (free_port().unwrap(), free_port().unwrap());
    let secrets = tempfile::tempdir().unwrap();
    let token_file = secrets.path().join("sink.token");
    std::fs::write(&token_file, "sink-secret-123\n").unwrap();
    let config: &'static str = Box::leak(
        format!(
            r#"
[evidence]
node = "gw-sink"
checkpoint_interval = "1s"

[[evidence.sinks]]
name = "siem-http"
type = "http"
url = "http://127.0.0.1:{http_port}/ingest"
format = "ocsf"
batch_max = 5
bearer_token_file = "{}"

[[evidence.sinks]]
name = "siem-syslog"
type = "syslog"
address = "127.0.0.1:{syslog_port}"
"#,
            token_file.display()
        )
        .into_boxed_str(),
    );
    let mut h = Harness::with(Options {
        policy: Some(POLICY.into()),
        extra_config: config,
        ..Options::default()
    });

    // Outage: nothing listens. The data path does not notice.
    let token = h.token("ci-deploy", &[], "1h");
    work(&h, &token);
    h.stop_gateway();
    let sinks_dir = h.data_dir.join("sinks");
    let cursor = |name: &str| sinks_dir.join(format!("{name}.next"));
    assert!(!cursor("siem-http").exists(), "nothing was delivered");
    assert!(h
        .log_text()
        .contains("could not deliver evidence events to a sink"));

    // The receivers come up (HTTP refusing twice more); the gateway restarts.
    let endpoint = common::http::HttpReceiver::start(http_port, 2);
    let messages = syslog_receiver(syslog_port);
    h.start_gateway();
    work(&h, &token);
    h.stop_gateway();
    assert_eq!(endpoint.refused(), 2);

    let logged: Vec<Value> = h
        .cli_ok(&["audit", "export", "--format", "jsonl"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let n = logged.len() as u64;
    assert!(n > 20, "only {n} events");
    let all: Vec<u64> = (0..n).collect();

    // HTTP: every entry once, in order, in OCSF, with the headers to dedupe by.
    let mut seqs = Vec::new();
    for b in endpoint.received() {
        assert_eq!(b.path, "/ingest");
        assert_eq!(b.headers["authorization"], "Bearer sink-secret-123");
        assert_eq!(b.headers["content-type"], "application/x-ndjson");
        let first: u64 = b.headers["gatehouse-first-seq"].parse().unwrap();
        let last: u64 = b.headers["gatehouse-last-seq"].parse().unwrap();
        let lines: Vec<&str> = b.body.lines().collect();
        assert!(lines.len() <= 5, "batch_max is 5");
        assert_eq!(last - first + 1, lines.len() as u64);
        for (i, line) in lines.iter().enumerate() {
            let ev: Value = serde_json::from_str(line).unwrap();
            let seq = ev["metadata"]["sequence"].as_u64().unwrap();
            assert_eq!(seq, first + i as u64);
            assert_eq!(ev["metadata"]["version"], "1.3.0");
            assert_eq!(
                ev["unmapped"]["gatehouse"]["payload"],
                logged[seq as usize]["payload"]
            );
            seqs.push(seq);
        }
    }
    assert_eq!(seqs, all, "HTTP sink: each event exactly once, in order");
    let saved = std::fs::read_to_string(cursor("siem-http")).unwrap();
    let (next, after) = saved.trim().split_once(' ').unwrap();
    assert_eq!(next, n.to_string());
    assert_eq!(
        after,
        logged[n as usize - 1]["integrity"]["leaf_hash"]
            .as_str()
            .unwrap(),
        "the cursor names the last delivered entry's hash"
    );

    // Syslog: RFC 5424 with our structured data, CEF as the message.
    let messages = messages.lock().unwrap();
    let mut seqs = Vec::new();
    for m in messages.iter() {
        let (head, msg) = m.split_once("] \u{feff}").expect("SD then BOM");
        let fields: Vec<&str> = head.splitn(7, ' ').collect();
        let (pri, version) = fields[0][1..].split_once('>').unwrap();
        assert_eq!(version, "1");
        assert!(fields[1].ends_with('Z'), "timestamp {}", fields[1]);
        assert_eq!(fields[2], "gw-sink");
        assert_eq!(fields[3], "gatehouse");
        assert!(fields[4].parse::<u32>().is_ok(), "procid {}", fields[4]);
        let seq: u64 = fields[6]
            .strip_prefix("[gatehouse@32473 seq=\"")
            .and_then(|s| s.split('"').next())
            .unwrap()
            .parse()
            .unwrap();
        let entry = &logged[seq as usize];
        assert_eq!(fields[5], entry["kind"].as_str().unwrap());
        assert!(msg.starts_with("CEF:0|Gatehouse|Gatehouse|"), "{msg}");
        assert!(msg.contains(&format!("cn1={seq} ")), "{msg}");
        // authpriv (10): warning (4) for refusals, notice (5) otherwise.
        let denied =
            entry["kind"] == "statement" && entry["payload"]["decision"]["decision"] == "deny";
        if denied {
            assert_eq!(pri, "84", "{m}");
        }
        if entry["kind"] == "session_start" {
            assert_eq!(pri, "85", "{m}");
        }
        seqs.push(seq);
    }
    assert_eq!(seqs, all, "syslog sink: each event exactly once, in order");
    assert!(
        logged
            .iter()
            .any(|e| e["payload"]["decision"]["decision"] == "deny"),
        "the refused DELETE is in the log"
    );
    // The token never reaches the gateway's own log.
    assert!(!h.log_text().contains("sink-secret-123"));

    // A log moved aside and started afresh: the saved positions belong to
    // the old log, and following them would skip the new one's first
    // entries, so the gateway does not start until they are dealt with.
    let aside = h.dir.path().join("old-evidence");
    std::fs::create_dir(&aside).unwrap();
    for f in std::fs::read_dir(&h.data_dir).unwrap().flatten() {
        if f.file_name().to_string_lossy().starts_with("evidence.db") {
            std::fs::rename(f.path(), aside.join(f.file_name())).unwrap();
        }
    }
    let err = stderr(&h.serve_expecting_failure());
    assert!(
        err.contains("sink \"siem-http\"") && err.contains("is not in this evidence log"),
        "{err}"
    );
    assert!(
        err.contains("delete the file to deliver this log from its first live entry"),
        "{err}"
    );
}
