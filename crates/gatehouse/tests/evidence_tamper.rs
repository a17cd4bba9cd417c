//! `gatehouse audit verify` on a real log file changed by sqlite3 in several
//! ways at once, as an engineer with access to the file could: each change
//! is named once as what it is, and nothing is claimed that did not happen
//! (no truncation after a deletion in the middle, no deletion for an entry
//! made unreadable).

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

const EVIDENCE: &str = r#"
[evidence]
node = "gw-tamper"
origin = "gatehouse.test/gw-tamper"
checkpoint_every = 8
checkpoint_interval = "1s"
"#;

fn sqlite(db: &Path, sql: &str) -> String {
    let out = Command::new("sqlite3").arg(db).arg(sql).output().unwrap();
    assert!(out.status.success(), "sqlite3 {sql}: {}", stderr(&out));
    stdout(&out).trim().to_string()
}

/// The findings of `audit verify` on a copy of the log changed by `sql`.
fn findings(h: &Harness, name: &str, sql: &str) -> Vec<String> {
    let f: PathBuf = h.dir.path().join(name);
    std::fs::copy(h.data_dir.join("evidence.db"), &f).unwrap();
    sqlite(&f, sql);
    let key = h.cli_ok(&["audit", "public-key"]).trim().to_string();
    let out = h.cli(&[
        "audit",
        "verify",
        "--log",
        f.to_str().unwrap(),
        "--key",
        &key,
    ]);
    assert_eq!(out.status.code(), Some(1), "{name}: {}", stdout(&out));
    let text = stdout(&out);
    let found: Vec<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("FOUND: "))
        .map(str::to_string)
        .collect();
    assert!(
        text.contains(&format!(
            "{} finding(s): the log is not intact",
            found.len()
        )),
        "{text}"
    );
    found
}

/// Sequence number of the entry of `kind` whose text holds `needle`.
fn seq_of(h: &Harness, kind: &str, needle: &str) -> u64 {
    sqlite(
        &h.data_dir.join("evidence.db"),
        &format!(
            "SELECT seq FROM entries WHERE CAST(bytes AS TEXT) LIKE '%{needle}%' \
             AND CAST(bytes AS TEXT) LIKE '%\"kind\":\"{kind}\"%'"
        ),
    )
    .parse()
    .unwrap()
}

fn edit(seq: u64, from: &str, to: &str) -> String {
    format!(
        "UPDATE entries SET bytes = CAST(replace(CAST(bytes AS TEXT), '{from}', '{to}') AS BLOB) \
         WHERE seq = {seq};"
    )
}

#[test]
fn combined_edits_deletions_and_insertions_are_each_named_once() {
    let mut h = Harness::with(Options {
        extra_config: EVIDENCE,
        ..Options::default()
    });
    let token = h.token("ci-deploy", &["ci"], "1h");
    for i in 0..8 {
        let out = h.psql(&token, "app-db", &format!("SELECT {i} AS n"));
        assert!(out.status.success(), "{}", stderr(&out));
    }
    h.stop_gateway();
    let db = h.data_dir.join("evidence.db");
    let n: u64 = sqlite(&db, "SELECT COUNT(*) FROM entries").parse().unwrap();
    let checkpoints: u64 = sqlite(&db, "SELECT COUNT(*) FROM checkpoints")
        .parse()
        .unwrap();
    assert!(
        n > 40 && checkpoints >= 4,
        "{n} entries, {checkpoints} checkpoints"
    );
    let s2 = seq_of(&h, "statement", "SELECT 2 AS n");
    let s6 = seq_of(&h, "statement", "SELECT 6 AS n");

    // One entry edited and one deleted (the issue's case): two findings
    // about entries, one about the checkpoints they break, no truncation.
    let deleted = s6 + 1;
    let got = findings(
        &h,
        "edit-delete.db",
        &(edit(s2, "SELECT 2", "SELECT 9")
            + &format!("DELETE FROM entries WHERE seq = {deleted};")),
    );
    assert!(
        got.contains(&format!(
            "entry {s2} was edited: its content no longer matches the hash entry {} links to",
            s2 + 1
        )),
        "{got:#?}"
    );
    assert!(
        got.contains(&format!("entry {deleted} was deleted")),
        "{got:#?}"
    );
    assert_eq!(got.len(), 3, "{got:#?}");
    assert!(got[2].contains("does not match the entries"), "{got:#?}");
    assert!(!got.iter().any(|f| f.contains("truncated")), "{got:#?}");

    // The same as JSON: each finding's kind, fields and message.
    let key = h.cli_ok(&["audit", "public-key"]).trim().to_string();
    let copy = h.dir.path().join("edit-delete.db");
    let out = h.cli(&[
        "audit",
        "verify",
        "--json",
        "--log",
        copy.to_str().unwrap(),
        "--key",
        &key,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["ok"], false);
    let kinds: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["deleted", "edited", "root_mismatch"], "{v}");
    assert_eq!(v["findings"][1]["seq"], s2);
    assert_eq!(v["findings"][0]["from"], deleted);
    let messages: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["message"].as_str().unwrap())
        .collect();
    let mut text = got.clone();
    text.sort();
    let mut messages: Vec<String> = messages.into_iter().map(str::to_string).collect();
    messages.sort();
    assert_eq!(messages, text);

    // A statement and the entry after it edited together: both named.
    let got = findings(
        &h,
        "adjacent.db",
        // Every entry has a time; what the next entry is (the next login, or
        // this statement's result) depends on timing.
        &(edit(s2, "SELECT 2", "SELECT 9") + &edit(s2 + 1, "\"time\":\"20", "\"time\":\"19")),
    );
    assert!(
        got.iter()
            .any(|f| f.starts_with(&format!("entry {s2} was edited"))),
        "{got:#?}"
    );
    assert!(
        got.iter()
            .any(|f| f.starts_with(&format!("entry {} was edited", s2 + 1))),
        "{got:#?}"
    );
    assert_eq!(got.len(), 3, "{got:#?}");

    // A forged copy inserted, another entry deleted, the tail cut.
    let cut = n - 3;
    let got = findings(
        &h,
        "insert-delete-cut.db",
        &(format!(
            "INSERT INTO entries (seq, bytes) SELECT seq, CAST(replace(CAST(bytes AS TEXT), 'SELECT 6', 'SELECT 7') AS BLOB) FROM entries WHERE seq = {s6};\
             DELETE FROM entries WHERE seq = {s2};\
             DELETE FROM entries WHERE seq >= {cut};"
        )),
    );
    assert!(
        got.iter()
            .any(|f| f.contains(&format!("sequence number {s6} is used twice"))),
        "{got:#?}"
    );
    assert!(got.contains(&format!("entry {s2} was deleted")), "{got:#?}");
    let truncations: Vec<&String> = got.iter().filter(|f| f.contains("truncated")).collect();
    assert_eq!(truncations.len(), 1, "one cut, one finding: {got:#?}");
    assert!(
        truncations[0].contains(&format!("the log holds {cut}; entries {cut} to {}", n - 1)),
        "{got:#?}"
    );
    assert_eq!(got.len(), 3, "{got:#?}");
    assert!(
        !got.iter().any(|f| f.contains("was edited")),
        "the original is kept: {got:#?}"
    );

    // An entry edited until it is no entry at all, another deleted: named
    // by its number, not as a deletion.
    let got = findings(
        &h,
        "unreadable.db",
        &(edit(s2, "\"kind\":\"statement\"", "\"kind\":\"statemnt\"")
            + &format!("DELETE FROM entries WHERE seq = {deleted};")),
    );
    assert!(
        got.iter()
            .any(|f| f.starts_with(&format!("entry {s2} (storage position"))
                && f.contains("is no longer a valid entry")),
        "{got:#?}"
    );
    assert!(
        got.contains(&format!("entry {deleted} was deleted")),
        "{got:#?}"
    );
    assert!(
        !got.contains(&format!("entry {s2} was deleted")),
        "{got:#?}"
    );
    assert!(!got.iter().any(|f| f.contains("truncated")), "{got:#?}");
    assert_eq!(got.len(), 3, "{got:#?}");
}
