//! Verification names each kind of tampering with a log.

use gatehouse_evidence::{
    merkle, verify, Checkpoint, Entry, Event, EventKind, Finding, SigningKey, StoredCheckpoint,
    StoredEntry,
};
use serde_json::json;

const ORIGIN: &str = "gatehouse.test/node-a";

fn log(n: u64) -> Vec<StoredEntry> {
    let mut prev = [0u8; 32];
    (0..n)
        .map(|seq| {
            let bytes = Entry {
                seq,
                node: "node-a".into(),
                prev,
                event: Event {
                    kind: EventKind::Statement,
                    time: format!("2026-11-22T10:00:{:02}Z", seq % 60),
                    payload: json!({"identity": "agent", "decision": "allow", "n": seq}),
                },
            }
            .encode()
            .unwrap();
            prev = merkle::leaf_hash(&bytes);
            StoredEntry {
                position: seq as i64 + 1,
                bytes,
            }
        })
        .collect()
}

fn checkpoint(key: &SigningKey, entries: &[StoredEntry], size: usize) -> StoredCheckpoint {
    let leaves: Vec<_> = entries[..size]
        .iter()
        .map(|e| merkle::leaf_hash(&e.bytes))
        .collect();
    StoredCheckpoint {
        source: "store".into(),
        note: key.sign(&Checkpoint {
            origin: ORIGIN.into(),
            size: size as u64,
            root: merkle::root(&leaves),
        }),
    }
}

struct Fixture {
    key: SigningKey,
    entries: Vec<StoredEntry>,
    checkpoints: Vec<StoredCheckpoint>,
}

fn fixture() -> Fixture {
    let key = SigningKey::generate(ORIGIN).unwrap();
    let entries = log(10);
    let checkpoints = vec![
        checkpoint(&key, &entries, 4),
        checkpoint(&key, &entries, 10),
    ];
    Fixture {
        key,
        entries,
        checkpoints,
    }
}

fn findings(f: &Fixture) -> Vec<Finding> {
    verify(&f.entries, &f.checkpoints, &f.key.verifier()).findings
}

#[test]
fn an_untouched_log_verifies() {
    let f = fixture();
    let r = verify(&f.entries, &f.checkpoints, &f.key.verifier());
    assert!(r.is_clean(), "{:?}", r.findings);
    assert_eq!((r.checkpoints_verified, r.verified_size), (2, 10));
}

#[test]
fn an_edited_entry_is_named() {
    let mut f = fixture();
    let s = String::from_utf8(f.entries[6].bytes.clone()).unwrap();
    f.entries[6].bytes = s.replace("\"allow\"", "\"alloW\"").into_bytes();
    let got = findings(&f);
    assert!(got.contains(&Finding::Edited { seq: 6 }), "{got:?}");
    assert!(
        got.iter().any(|x| matches!(
            x,
            Finding::RootMismatch {
                size: 10,
                last_good: 4,
                ..
            }
        )),
        "{got:?}"
    );
    // A byte that breaks the encoding itself.
    let mut f = fixture();
    f.entries[2].bytes[0] = b' ';
    assert!(matches!(
        findings(&f)[0],
        Finding::Unreadable { position: 3, .. }
    ));
}

#[test]
fn deletions_insertions_swaps_and_truncation_are_named() {
    let mut f = fixture();
    f.entries.remove(5);
    assert!(findings(&f).contains(&Finding::Deleted { from: 5, to: 5 }));

    let mut f = fixture();
    let copy = StoredEntry {
        position: 99,
        bytes: f.entries[3].bytes.clone(),
    };
    f.entries.insert(7, copy);
    assert!(findings(&f).contains(&Finding::Inserted {
        seq: 3,
        position: 99
    }));

    let mut f = fixture();
    f.entries.swap(2, 3);
    assert!(findings(&f).contains(&Finding::Reordered {
        first: 3,
        second: 2
    }));

    let mut f = fixture();
    f.entries.truncate(8);
    let got = findings(&f);
    assert!(
        got.iter().any(|x| matches!(
            x,
            Finding::Truncated {
                checkpoint_size: 10,
                present: 8,
                ..
            }
        )),
        "{got:?}"
    );
}

#[test]
fn an_edit_and_a_deletion_are_named_and_nothing_else() {
    let mut f = fixture();
    let s = String::from_utf8(f.entries[2].bytes.clone()).unwrap();
    f.entries[2].bytes = s.replace("\"allow\"", "\"alloW\"").into_bytes();
    f.entries.remove(6);
    let got = findings(&f);
    assert!(got.contains(&Finding::Edited { seq: 2 }), "{got:?}");
    assert!(
        got.contains(&Finding::Deleted { from: 6, to: 6 }),
        "{got:?}"
    );
    assert!(
        !got.iter().any(|x| matches!(x, Finding::Truncated { .. })),
        "a deletion in the middle is no truncation: {got:?}"
    );
    // Deleted, then also cut at the end: both named.
    f.entries.truncate(7);
    let got = findings(&f);
    assert!(
        got.iter().any(|x| matches!(
            x,
            Finding::Truncated {
                checkpoint_size: 10,
                present: 8,
                ..
            }
        )),
        "{got:?}"
    );
}

#[test]
fn a_forged_or_replaced_checkpoint_is_named() {
    let mut f = fixture();
    let other = SigningKey::generate(ORIGIN).unwrap();
    f.checkpoints[1] = checkpoint(&other, &f.entries, 10);
    let got = findings(&f);
    assert!(matches!(got[0], Finding::BadCheckpoint { .. }), "{got:?}");
}
