//! Sealed segments: a log of 20,000 entries (the real writer, a real SQLite
//! store) sealed into segments of 5,000 by the node's sealer; then the real
//! `gatehouse` binary lists, verifies, proves and packs across segments and
//! the live store, finds segments moved to an archive (by folder or by a
//! fetch command), and names tampering inside a sealed segment.

mod common;

use common::evidence_log::{self, gatehouse, json_of, sqlite, DAY_ONE_MS};
use common::{stderr, stdout};
use gatehouse::config::{Archive, SegmentSpec};
use gatehouse::evidence::segments::{archive_pending, seal_next, SegmentPlaces};
use gatehouse_core::{AuditEvent, EventKind, Timestamp};
use gatehouse_evidence::{SegmentFiles, SigningKey};
use gatehouse_store::{Durability, SqliteEvidenceStore};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

const ENTRIES: usize = 20_000;

fn event(i: usize) -> AuditEvent {
    let time =
        Timestamp::from_unix_millis(DAY_ONE_MS + (i as i64) * 2 * 86_400_000 / ENTRIES as i64);
    AuditEvent {
        kind: EventKind::Statement,
        time,
        payload: json!({"session": format!("s-{}", i / 20), "statement": format!("SELECT {i}"), "decision": "allow"}),
    }
}

fn rows_in(db: &Path) -> u64 {
    let out = Command::new("sqlite3")
        .arg(db)
        .arg("SELECT count(*) FROM entries")
        .output()
        .unwrap();
    stdout(&out).trim().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_kept_in_segments_verifies_proves_and_packs_wherever_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("evidence.db");
    let key = SigningKey::generate("gatehouse.test/segments").unwrap();
    evidence_log::write(&db, &key, ENTRIES, event).await;
    let pubkey = key.verifier().to_string();
    let log = db.to_str().unwrap().to_string();
    let with = |args: &[&str]| -> Vec<String> {
        args.iter()
            .map(|s| s.to_string())
            .chain(["--log".into(), log.clone(), "--key".into(), pubkey.clone()])
            .collect()
    };
    let run = |args: &[&str]| {
        let a = with(args);
        gatehouse(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };

    // Seal: segments of at least 5,000 entries, each ending at a checkpoint
    // older than the newest; a live sink 16,500 entries in holds the rest.
    let store = SqliteEvidenceStore::open(&db, Durability::Os)
        .await
        .unwrap();
    let spec = SegmentSpec {
        entries: 5_000,
        dir: dir.path().join("evidence-segments"),
        archive: None,
        fetch_command: None,
    };
    let mut sealed = Vec::new();
    while let Some(s) = seal_next(&store, &key.verifier(), &spec, 16_500)
        .await
        .unwrap()
    {
        sealed.push((s.first, s.count));
    }
    assert_eq!(sealed, [(0, 5_000), (5_000, 5_000), (10_000, 5_000)]);
    assert_eq!(rows_in(&db), 5_000, "sealed entries leave the live store");
    // A row slipped in below the live log, where sealed rows were: every
    // reader of the store would meet it, so verification names it.
    sqlite(
        &db,
        "INSERT INTO entries (position, seq, bytes) VALUES (3, 15500, 'junk')",
    );
    let out = run(&["audit", "verify", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let v = json_of(&out);
    assert!(
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["kind"] == "unreadable" && f["position"] == 3),
        "{v}"
    );
    sqlite(&db, "DELETE FROM entries WHERE position = 3");

    let out = run(&["audit", "segments", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let listed = json_of(&out);
    assert_eq!(listed.as_array().unwrap().len(), 3, "{listed}");
    assert_eq!(listed[1]["first"], 5_000);
    assert_eq!(listed[1]["last"], 9_999);
    assert!(
        listed[2]["found_at"]
            .as_str()
            .unwrap()
            .ends_with("segment-000003-10000-14999.log"),
        "{listed}"
    );

    // The whole log verifies across segments and the live store.
    let out = run(&["audit", "verify", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let v = json_of(&out);
    assert_eq!(v["entries"], ENTRIES as u64, "{v}");
    assert_eq!(v["verified_size"], ENTRIES as u64, "{v}");

    // One tree across segments: the log signed at 5,000 entries (now all
    // sealed) is a prefix of the newest, offline with only the key.
    let cons = dir.path().join("c.json");
    let out = run(&[
        "audit",
        "consistency",
        "--from",
        "5000",
        "--out",
        cons.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = gatehouse(&[
        "audit",
        "verify-consistency",
        cons.to_str().unwrap(),
        "--key",
        &pubkey,
    ]);
    assert!(
        stdout(&out).starts_with("OK: the log gatehouse.test/segments signed at 5000 entries is a prefix of the log signed at 20000"),
        "{}",
        stdout(&out)
    );
    let mut forged: Value = serde_json::from_str(&std::fs::read_to_string(&cons).unwrap()).unwrap();
    forged["proof"][0] = Value::String("00".repeat(32));
    std::fs::write(&cons, forged.to_string()).unwrap();
    let out = gatehouse(&[
        "audit",
        "verify-consistency",
        cons.to_str().unwrap(),
        "--key",
        &pubkey,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).starts_with("FAILED: the log signed at 5000 entries is not a prefix"),
        "{}",
        stdout(&out)
    );
    let out = run(&["audit", "consistency", "--from", "4321"]);
    assert!(
        stderr(&out).contains("no signed checkpoint covers exactly 4321 entries"),
        "{}",
        stderr(&out)
    );

    // A proof of an entry in the first segment; a pack of day one (all sealed).
    let proof = dir.path().join("p.json");
    let out = run(&["audit", "proof", "1234", "--out", proof.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = gatehouse(&[
        "audit",
        "verify-proof",
        proof.to_str().unwrap(),
        "--key",
        &pubkey,
    ]);
    assert!(
        stdout(&out).starts_with("OK: entry 1234 "),
        "{}",
        stdout(&out)
    );
    let pack = dir.path().join("pack");
    let out = run(&[
        "evidence",
        "--from",
        "2026-12-01",
        "--to",
        "2026-12-01",
        "--json",
        "--out",
        pack.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json_of(&out)["entries"], ENTRIES as u64 / 2);
    let out = Command::new("python3")
        .arg("verify_pack.py")
        .current_dir(&pack)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));

    // Archived to another folder: not found where the log is, found with
    // --segments naming the archive.
    let archive = dir.path().join("archive");
    std::fs::create_dir(&archive).unwrap();
    let archiving = SegmentSpec {
        archive: Some(Archive::Dir(archive.clone())),
        ..spec.clone()
    };
    assert_eq!(archive_pending(&store, &archiving).await.unwrap(), 3);
    assert!(!spec.dir.join("segment-000001-0-4999.log").exists());
    let out = run(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("segment 1 (entries 0 to 4999, file segment-000001-0-4999.log) is not in"),
        "{err}"
    );
    assert!(err.contains("--segments"), "{err}");
    let out = run(&["audit", "verify", "--segments", archive.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let listed = json_of(&run(&["audit", "segments", "--json"]));
    assert_eq!(
        listed[0]["archived_to"],
        archive.display().to_string(),
        "{listed}"
    );
    assert_eq!(listed[0]["found_at"], Value::Null, "{listed}");

    // Brought back by a fetch command (as from an object store).
    let places = SegmentPlaces {
        dirs: vec![spec.dir.clone()],
        fetch_command: Some(format!("cp {}/{{name}} {{file}}", archive.display())),
    };
    let found = places.find(&store.segments().await.unwrap()).unwrap();
    assert_eq!(found.count(), 3);
    for i in 0..3 {
        // Brought back when reached, let go when done.
        let p = found.open(i).await.unwrap();
        assert!(
            p.is_file() && !p.starts_with(&spec.dir) && !p.starts_with(&archive),
            "{p:?}"
        );
        found.done(i).await;
        assert!(
            !p.exists(),
            "the fetched copy of segment {} stays behind",
            i + 1
        );
    }
    let failing = SegmentPlaces {
        dirs: vec![spec.dir.clone()],
        fetch_command: Some("false {name} {file}".into()),
    };
    let found = failing.find(&store.segments().await.unwrap()).unwrap();
    let err = found.open(0).await.unwrap_err().to_string();
    assert!(
        err.contains("segment 1 (entries 0 to 4999") && err.contains("fetching it"),
        "{err}"
    );

    // An entry edited inside a sealed segment is named.
    let seg2 = archive.join("segment-000002-5000-9999.log");
    let text = std::fs::read_to_string(&seg2).unwrap();
    std::fs::write(&seg2, text.replace("SELECT 7000\"", "SELECT 7001\"")).unwrap();
    let out = run(&[
        "audit",
        "verify",
        "--json",
        "--segments",
        archive.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let v = json_of(&out);
    let findings = v["findings"].as_array().unwrap();
    assert!(
        findings
            .iter()
            .any(|f| f["kind"] == "edited" && f["seq"] == 7000),
        "{v}"
    );
    assert!(findings.iter().any(|f| f["kind"] == "root_mismatch"), "{v}");
    assert!(
        findings
            .iter()
            .any(|f| f["kind"] == "segment_changed" && f["segment"] == 2),
        "{v}"
    );
    // A pass after verification refuses a file that changed under it.
    let out = run(&["audit", "export", "--segments", archive.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("does not verify")
            || stderr(&out).contains("segment 2's file does not hash"),
        "{}",
        stderr(&out)
    );
}

/// Sealing never tidies damage away: a second copy of a sealed entry, or
/// two entries stored out of order, stop it with nothing changed (and
/// `audit verify` still names them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealing_refuses_a_stretch_that_is_not_exactly_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("evidence.db");
    let key = SigningKey::generate("gatehouse.test/segments").unwrap();
    evidence_log::write(&db, &key, 4_000, event).await;
    let store = SqliteEvidenceStore::open(&db, Durability::Os)
        .await
        .unwrap();
    let spec = SegmentSpec {
        entries: 1_000,
        dir: dir.path().join("evidence-segments"),
        archive: None,
        fetch_command: None,
    };
    let verifier = key.verifier();
    let seal = || seal_next(&store, &verifier, &spec, u64::MAX);

    // A copy of the segment's last entry, stored after the segment.
    sqlite(
        &db,
        "INSERT INTO entries (seq, bytes) SELECT seq, bytes FROM entries WHERE seq = 999",
    );
    let err = format!("{:#}", seal().await.unwrap_err());
    assert!(
        err.contains("filed twice") || err.contains("does not hold exactly"),
        "{err}"
    );
    assert_eq!(rows_in(&db), 4_001, "nothing was removed");
    assert!(store.segments().await.unwrap().is_empty());
    sqlite(
        &db,
        "DELETE FROM entries WHERE position = (SELECT max(position) FROM entries WHERE seq = 999)",
    );

    // Entries 200 and 201 stored the other way round.
    sqlite(
        &db,
        "UPDATE entries SET position = -1 WHERE seq = 200; \
         UPDATE entries SET position = 201 WHERE seq = 201; \
         UPDATE entries SET position = 202 WHERE seq = 200;",
    );
    let err = format!("{:#}", seal().await.unwrap_err());
    assert!(err.contains("stored before the entry it follows"), "{err}");
    assert_eq!(rows_in(&db), 4_000);
    let pubkey = key.verifier().to_string();
    let out = gatehouse(&[
        "audit",
        "verify",
        "--log",
        db.to_str().unwrap(),
        "--key",
        &pubkey,
    ]);
    assert!(
        stdout(&out).contains("stored out of order"),
        "{}",
        stdout(&out)
    );

    // Put right, it seals.
    sqlite(
        &db,
        "UPDATE entries SET position = -1 WHERE seq = 201; \
         UPDATE entries SET position = 201 WHERE seq = 200; \
         UPDATE entries SET position = 202 WHERE seq = 201;",
    );
    // A row stored below the stretch (where sealed rows were, say): not sealed over.
    sqlite(
        &db,
        "INSERT INTO entries (position, seq, bytes) VALUES (-5, 3999, 'junk')",
    );
    let err = format!("{:#}", seal().await.unwrap_err());
    assert!(err.contains("none stored before them"), "{err}");
    sqlite(&db, "DELETE FROM entries WHERE position = -5");

    let sealed = seal().await.unwrap().unwrap();
    assert_eq!((sealed.first, sealed.count), (0, 1_000));
    assert_eq!(rows_in(&db), 3_000);
}
