//! The `audit` commands on a log of many pages (20,000 entries over two
//! days, written by the real writer): verification, a proof, an export and
//! a one-day evidence pack all read the log a page at a time and agree with
//! each other; damage far apart in it is each named.

mod common;

use common::evidence_log::{self, gatehouse, json_of, sqlite, DAY_ONE_MS};
use common::{stderr, stdout};
use gatehouse_core::{AuditEvent, EventKind, Timestamp};
use gatehouse_evidence::SigningKey;
use serde_json::{json, Value};
use std::process::{Command, Output};

const ENTRIES: usize = 20_000;

fn event(i: usize) -> AuditEvent {
    // Two days, evenly: entry i at DAY_ONE + i × (2 days / ENTRIES).
    let time =
        Timestamp::from_unix_millis(DAY_ONE_MS + (i as i64) * 2 * 86_400_000 / ENTRIES as i64);
    let session = format!("s-{}", i / 20);
    let (kind, payload) = match i % 20 {
        0 => (
            EventKind::SessionStart,
            json!({"session": session, "identity": {"subject": "ci-job", "groups": ["ci"], "source": "service_token"},
                   "connection": "orders-db", "client_addr": "10.0.0.1:5000"}),
        ),
        19 => (
            EventKind::SessionEnd,
            json!({"session": session, "reason": "client_closed"}),
        ),
        k => (
            EventKind::Statement,
            json!({"session": session, "statement": format!("SELECT {k}"), "decision": "allow"}),
        ),
    };
    AuditEvent {
        kind,
        time,
        payload,
    }
}

fn audit(args: &[&str]) -> Output {
    gatehouse(args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_commands_read_a_large_log_a_page_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("evidence.db");
    let key = SigningKey::generate("gatehouse.test/scale").unwrap();
    evidence_log::write(&db, &key, ENTRIES, event).await;
    let pubkey = key.verifier().to_string();
    let log = db.to_str().unwrap();
    let source = ["--log", log, "--key", pubkey.as_str()];

    // Verification: every entry and every checkpoint, with the rate.
    let out = audit(&[&["audit", "verify", "--json"][..], &source].concat());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let v = json_of(&out);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["entries"], ENTRIES as u64, "{v}");
    assert_eq!(v["verified_size"], v["entries"], "{v}");
    assert!(v["checkpoints_verified"].as_u64().unwrap() >= 20, "{v}");
    assert!(v["entries_per_second"].as_f64().unwrap() > 0.0, "{v}");
    let text = stdout(&audit(&[&["audit", "verify"][..], &source].concat()));
    assert!(text.contains("entries/s)"), "{text}");
    assert!(text.contains("OK: no entry was edited"), "{text}");

    // A proof of an entry deep in the log, checked offline.
    let proof = dir.path().join("proof.json");
    let out = audit(
        &[
            &["audit", "proof", "14321", "--out", proof.to_str().unwrap()][..],
            &source,
        ]
        .concat(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = audit(&[
        "audit",
        "verify-proof",
        proof.to_str().unwrap(),
        "--key",
        &pubkey,
    ]);
    assert!(
        stdout(&out).starts_with("OK: entry 14321 "),
        "{}",
        stdout(&out)
    );

    // Day two: the export and the pack hold the same entries.
    let out = audit(
        &[
            &[
                "audit",
                "export",
                "--since",
                "2026-12-02",
                "--until",
                "2026-12-03",
            ][..],
            &source,
        ]
        .concat(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let exported = stdout(&out).lines().count();
    assert_eq!(exported, ENTRIES / 2, "entries of day two exported");
    let pack = dir.path().join("pack");
    let out = audit(
        &[
            &[
                "evidence",
                "--from",
                "2026-12-02",
                "--to",
                "2026-12-02",
                "--json",
                "--out",
                pack.to_str().unwrap(),
            ][..],
            &source,
        ]
        .concat(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json_of(&out);
    assert_eq!(v["entries"], ENTRIES as u64 / 2, "{v}");
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(pack.join("pack.json")).unwrap()).unwrap();
    assert_eq!(manifest["first"], ENTRIES as u64 / 2, "{manifest}");
    assert_eq!(manifest["last"], ENTRIES as u64 - 1, "{manifest}");
    let events = std::fs::read_to_string(pack.join("events.jsonl")).unwrap();
    assert_eq!(events.lines().count(), ENTRIES / 2);
    // One session row per session of the day, each with its proof.
    let sessions = std::fs::read_to_string(pack.join("sessions.csv")).unwrap();
    assert_eq!(
        sessions.lines().count(),
        1 + ENTRIES / 2 / 20,
        "{}",
        &sessions[..200]
    );
    let out = Command::new("python3")
        .arg("verify_pack.py")
        .current_dir(&pack)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));

    // Damage far apart (further than a verification window) is each named.
    let sql = format!(
        "UPDATE entries SET bytes = CAST(replace(CAST(bytes AS TEXT), 'SELECT 5', 'SELECT 6') AS BLOB) WHERE seq = 105; \
         DELETE FROM entries WHERE seq = 9000; \
         UPDATE entries SET seq = 999999 WHERE seq = 12345; \
         INSERT INTO entries (seq, bytes) SELECT seq, bytes FROM entries WHERE seq = {};",
        ENTRIES - 7
    );
    sqlite(&db, &sql);
    let out = audit(&[&["audit", "verify", "--json"][..], &source].concat());
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let v = json_of(&out);
    let kinds: Vec<String> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{}:{}",
                f["kind"].as_str().unwrap(),
                f["seq"]
                    .as_u64()
                    .or(f["from"].as_u64())
                    .or(f["size"].as_u64())
                    .unwrap_or(0)
            )
        })
        .collect();
    assert!(kinds.contains(&"edited:105".to_string()), "{kinds:?}");
    assert!(kinds.contains(&"deleted:9000".to_string()), "{kinds:?}");
    // Filed under another number: a live sink would never find it.
    assert!(kinds.contains(&"misfiled:12345".to_string()), "{kinds:?}");
    assert!(
        kinds.contains(&format!("inserted:{}", ENTRIES - 7)),
        "{kinds:?}"
    );
    // The first checkpoint past the edit fails (and the ones after with it).
    assert!(
        kinds.iter().any(|k| k.starts_with("root_mismatch:")),
        "{kinds:?}"
    );
}
