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

/// 20 entries, a checkpoint every 4.
fn long_fixture() -> Fixture {
    let key = SigningKey::generate(ORIGIN).unwrap();
    let entries = log(20);
    let checkpoints = (1..=5).map(|i| checkpoint(&key, &entries, i * 4)).collect();
    Fixture {
        key,
        entries,
        checkpoints,
    }
}

fn edit(f: &mut Fixture, seq: u64) {
    let i = f
        .entries
        .iter()
        .position(|e| Entry::decode(&e.bytes).unwrap().seq == seq)
        .unwrap();
    let s = String::from_utf8(f.entries[i].bytes.clone()).unwrap();
    f.entries[i].bytes = s.replace("\"allow\"", "\"alloW\"").into_bytes();
}

fn delete(f: &mut Fixture, seq: u64) {
    f.entries
        .retain(|e| Entry::decode(&e.bytes).map_or(true, |x| x.seq != seq));
}

fn mismatch(size: u64, last_good: u64, also: u64) -> Finding {
    Finding::RootMismatch {
        source: "store".into(),
        size,
        last_good,
        also,
    }
}

/// Findings in a stable order, to compare with exactly what was done.
fn sorted(f: &Fixture) -> Vec<String> {
    let mut v: Vec<String> = findings(f).iter().map(|x| format!("{x:?}")).collect();
    v.sort();
    v
}

fn expect(f: &Fixture, want: &[Finding]) {
    let mut want: Vec<String> = want.iter().map(|x| format!("{x:?}")).collect();
    want.sort();
    assert_eq!(sorted(f), want);
}

#[test]
fn combinations_of_edits_deletions_and_insertions_are_each_named_once() {
    // Two adjacent entries edited (a statement and its result, say): both named.
    let mut f = long_fixture();
    edit(&mut f, 5);
    edit(&mut f, 6);
    expect(
        &f,
        &[
            Finding::Edited { seq: 5 },
            Finding::Edited { seq: 6 },
            mismatch(8, 4, 3),
        ],
    );

    // An edit, a deletion and an inserted copy.
    let mut f = long_fixture();
    edit(&mut f, 3);
    delete(&mut f, 10);
    let copy = f.entries[13].bytes.clone();
    f.entries.push(StoredEntry {
        position: 99,
        bytes: copy,
    });
    expect(
        &f,
        &[
            Finding::Edited { seq: 3 },
            Finding::Deleted { from: 10, to: 10 },
            Finding::Inserted {
                seq: 14,
                position: 99,
            },
            mismatch(4, 0, 1),
        ],
    );

    // Two deletions in the middle and the tail cut: one truncation, named
    // by the largest checkpoint, and no other.
    let mut f = long_fixture();
    delete(&mut f, 2);
    delete(&mut f, 7);
    f.entries.truncate(f.entries.len() - 3);
    expect(
        &f,
        &[
            Finding::Deleted { from: 2, to: 2 },
            Finding::Deleted { from: 7, to: 7 },
            Finding::Truncated {
                source: "store".into(),
                checkpoint_size: 20,
                present: 17,
            },
        ],
    );

    // The tail cut past several checkpoints: still one truncation.
    let mut f = long_fixture();
    f.entries.truncate(9);
    expect(
        &f,
        &[Finding::Truncated {
            source: "store".into(),
            checkpoint_size: 20,
            present: 9,
        }],
    );

    // The first entries deleted.
    let mut f = long_fixture();
    delete(&mut f, 0);
    delete(&mut f, 1);
    expect(&f, &[Finding::Deleted { from: 0, to: 1 }]);

    // A forged entry stored before the original it duplicates: the forgery
    // is the inserted one, not the original.
    let mut f = long_fixture();
    let mut forged = f.entries[9].clone();
    let s = String::from_utf8(forged.bytes).unwrap();
    forged.bytes = s.replace("\"allow\"", "\"alloW\"").into_bytes();
    forged.position = -5;
    f.entries.insert(0, forged);
    expect(
        &f,
        &[Finding::Inserted {
            seq: 9,
            position: -5,
        }],
    );

    // Two entries swapped and another edited.
    let mut f = long_fixture();
    f.entries.swap(11, 12);
    edit(&mut f, 16);
    expect(
        &f,
        &[
            Finding::Reordered {
                first: 12,
                second: 11,
            },
            Finding::Edited { seq: 16 },
            mismatch(20, 16, 0),
        ],
    );
}

#[test]
fn an_entry_edited_until_unreadable_is_not_also_called_deleted() {
    // Its number still readable: named by it, and nothing else but the
    // checkpoints over it.
    let mut f = long_fixture();
    let s = String::from_utf8(f.entries[6].bytes.clone()).unwrap();
    f.entries[6].bytes = s.replace("\"statement\"", "\"statemnt\"").into_bytes();
    let got = findings(&f);
    assert!(
        matches!(
            &got[0],
            Finding::Unreadable {
                position: 7,
                seq: Some(6),
                ..
            }
        ),
        "{got:?}"
    );
    assert!(got[0]
        .to_string()
        .starts_with("entry 6 (storage position 7) was edited"));
    assert_eq!(got[1], mismatch(8, 4, 3), "{got:?}");
    assert_eq!(got.len(), 2, "{got:?}");

    // Not even JSON any more: the gap it leaves is not a deletion.
    let mut f = long_fixture();
    f.entries[6].bytes = b"garbage".to_vec();
    let got = findings(&f);
    assert!(
        matches!(
            &got[0],
            Finding::Unreadable {
                position: 7,
                seq: None,
                ..
            }
        ),
        "{got:?}"
    );
    assert!(
        !got.iter()
            .any(|x| matches!(x, Finding::Deleted { .. } | Finding::Truncated { .. })),
        "{got:?}"
    );
    // The last entry unreadable: no truncation either.
    let mut f = long_fixture();
    f.entries[19].bytes = b"garbage".to_vec();
    let got = findings(&f);
    assert_eq!(got.len(), 1, "{got:?}");
}
