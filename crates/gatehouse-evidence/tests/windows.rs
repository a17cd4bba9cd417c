//! Streaming verification names local damage exactly as verification of
//! the whole log in memory does: a proptest over logs of up to 300 entries
//! with small windows, compared with one unbounded window.

use gatehouse_evidence::{
    merkle, Checkpoint, Entry, Event, EventKind, Report, SigningKey, StoredCheckpoint, StoredEntry,
    Verifier, Window,
};
use proptest::prelude::*;
use serde_json::json;

const ORIGIN: &str = "gatehouse.test/windows";

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
                    time: "2026-11-30T10:00:00Z".into(),
                    payload: json!({"decision": "allow", "n": seq}),
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

/// One change an operator with the file could make, at an index.
#[derive(Clone, Debug)]
enum Damage {
    Edit,
    Delete,
    /// A copy of the entry stored `offset` rows later (1..=3).
    Copy(usize),
    SwapWithNext,
    Garbage,
    BreakKind,
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        Just(Damage::Edit),
        Just(Damage::Delete),
        (1usize..=3).prop_map(Damage::Copy),
        Just(Damage::SwapWithNext),
        Just(Damage::Garbage),
        Just(Damage::BreakKind),
    ]
}

fn apply(entries: &mut Vec<StoredEntry>, at: usize, d: &Damage) {
    let text = |e: &StoredEntry| String::from_utf8(e.bytes.clone()).unwrap();
    match d {
        Damage::Edit => {
            entries[at].bytes = text(&entries[at]).replace("allow", "alloW").into_bytes()
        }
        Damage::Delete => {
            entries.remove(at);
        }
        Damage::Copy(offset) => {
            let copy = StoredEntry {
                position: 10_000 + at as i64,
                bytes: entries[at].bytes.clone(),
            };
            entries.insert((at + offset + 1).min(entries.len()), copy);
        }
        Damage::SwapWithNext => entries.swap(at, at + 1),
        Damage::Garbage => entries[at].bytes = b"garbage".to_vec(),
        Damage::BreakKind => {
            entries[at].bytes = text(&entries[at])
                .replace("statement", "statemnt")
                .into_bytes()
        }
    }
}

fn run(entries: &[StoredEntry], cps: &[StoredCheckpoint], key: &SigningKey, w: Window) -> Report {
    let mut v = Verifier::with_window(cps.iter().cloned(), &key.verifier(), w);
    for e in entries {
        v.push(e.position, &e.bytes);
    }
    v.finish()
}

fn sorted(r: &Report) -> Vec<String> {
    let mut v: Vec<String> = r.findings.iter().map(|f| format!("{f:?}")).collect();
    v.sort();
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn local_damage_is_named_as_with_the_whole_log_in_memory(
        n in 40u64..300,
        every in 3usize..40,
        changes in proptest::collection::vec((0.0f64..1.0, damage()), 0..4),
        cut in 0usize..3,
    ) {
        let key = SigningKey::generate(ORIGIN).unwrap();
        let mut entries = log(n);
        let mut tree = merkle::Frontier::default();
        let mut cps: Vec<StoredCheckpoint> = Vec::new();
        for e in &entries {
            tree.push(merkle::leaf_hash(&e.bytes));
            if tree.size() % every as u64 == 0 || tree.size() == n {
                cps.push(StoredCheckpoint {
                    source: "store".into(),
                    note: key.sign(&Checkpoint { origin: ORIGIN.into(), size: tree.size(), root: tree.root() }),
                });
            }
        }
        // Changes at least 30 rows apart (each in a window of its own with
        // the small windows), applied from the end so indices stay put.
        let mut places: Vec<(usize, Damage)> = Vec::new();
        for (f, d) in changes {
            let at = ((f * (n as f64 - 5.0)) as usize).max(1);
            if places.iter().all(|(p, _)| p.abs_diff(at) >= 30) {
                places.push((at, d));
            }
        }
        places.sort_by_key(|(p, _)| std::cmp::Reverse(*p));
        for (at, d) in &places {
            apply(&mut entries, *at, d);
        }
        entries.truncate(entries.len() - cut);
        let small = Window { lookback: 8, settle: 8, cap: 1000 };
        let streamed = run(&entries, &cps, &key, small);
        let whole = run(&entries, &cps, &key, Window::unbounded());
        prop_assert_eq!(sorted(&streamed), sorted(&whole));
        prop_assert_eq!(streamed.checkpoints_verified, whole.checkpoints_verified);
        prop_assert_eq!(streamed.verified_size, whole.verified_size);
        prop_assert_eq!(streamed.is_clean(), places.is_empty() && cut == 0);
    }
}

/// An entry moved far from its place (further than any window) is still
/// found: named as deleted where it belongs and inserted where it is.
#[test]
fn an_entry_moved_far_away_is_found() {
    let key = SigningKey::generate(ORIGIN).unwrap();
    let mut entries = log(200);
    let moved = entries.remove(10);
    entries.push(moved);
    let small = Window {
        lookback: 8,
        settle: 8,
        cap: 1000,
    };
    let r = run(&entries, &[], &key, small);
    let got = sorted(&r);
    assert!(
        got.iter()
            .any(|f| f.contains("Deleted { from: 10, to: 10 }")),
        "{got:?}"
    );
    assert!(
        got.iter().any(|f| f.contains("Inserted { seq: 10")),
        "{got:?}"
    );
    // In one window it is what it is: stored out of order.
    let whole = run(&entries, &[], &key, Window::unbounded());
    assert_eq!(
        sorted(&whole),
        vec!["Reordered { first: 199, second: 10 }".to_string()]
    );
}
