//! Verification of a stored log: every entry decodes, the sequence has no
//! gaps, duplicates or reorderings, every entry links to the one before,
//! and every signed checkpoint (from the store or a witness) matches the
//! tree recomputed from the entries.

use crate::entry::Entry;
use crate::merkle::{leaf_hash, Frontier, Hash};
use crate::note::VerifierKey;
use std::collections::BTreeMap;
use std::fmt;

/// One stored entry, in storage order.
#[derive(Clone, Debug)]
pub struct StoredEntry {
    /// Its place in storage (row id).
    pub position: i64,
    /// Its bytes as stored.
    pub bytes: Vec<u8>,
}

/// A signed checkpoint and where it was found.
#[derive(Clone, Debug)]
pub struct StoredCheckpoint {
    /// `store`, or the witness file's path.
    pub source: String,
    /// The signed note.
    pub note: String,
}

/// Something verification found wrong. As JSON: `{"kind": "edited", "seq": 5}`
/// and so on, the variant's name in snake case and its fields.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Finding {
    /// An entry's bytes are not a valid canonical entry.
    Unreadable {
        /// Storage position.
        position: i64,
        /// Its sequence number, when the bytes still say it.
        seq: Option<u64>,
        /// Why.
        reason: String,
    },
    /// An entry's content was changed: the next entry no longer links to it.
    Edited {
        /// Its sequence number.
        seq: u64,
    },
    /// Sequence numbers missing.
    Deleted {
        /// First missing.
        from: u64,
        /// Last missing.
        to: u64,
    },
    /// A second entry with a sequence number already used.
    Inserted {
        /// The duplicated number.
        seq: u64,
        /// Storage position of the extra copy.
        position: i64,
    },
    /// Entries stored out of order.
    Reordered {
        /// The pair found in the wrong order.
        first: u64,
        /// The entry stored after it, with a smaller number.
        second: u64,
    },
    /// A checkpoint covers more entries than the log holds.
    Truncated {
        /// Where the checkpoint came from.
        source: String,
        /// Entries it covers.
        checkpoint_size: u64,
        /// Entries the log holds up to its highest sequence number.
        present: u64,
    },
    /// A checkpoint's root does not match the entries.
    RootMismatch {
        /// Where the checkpoint came from.
        source: String,
        /// Its size.
        size: u64,
        /// The largest earlier checkpoint size that matched (the change lies after it).
        last_good: u64,
        /// Larger checkpoints that fail too (they cover the same change).
        also: u64,
    },
    /// A checkpoint whose signature does not verify.
    BadCheckpoint {
        /// Where it came from.
        source: String,
        /// Why.
        reason: String,
    },
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreadable {
                position,
                seq: Some(seq),
                reason,
            } => write!(
                f,
                "entry {seq} (storage position {position}) was edited and is no longer a valid entry: {reason}"
            ),
            Self::Unreadable {
                position,
                seq: None,
                reason,
            } => write!(f, "entry at storage position {position} is unreadable: {reason}"),
            Self::Edited { seq } => write!(
                f,
                "entry {seq} was edited: its content no longer matches the hash entry {} links to",
                seq + 1
            ),
            Self::Deleted { from, to } if from == to => write!(f, "entry {from} was deleted"),
            Self::Deleted { from, to } => write!(f, "entries {from} to {to} were deleted"),
            Self::Inserted { seq, position } => write!(
                f,
                "an entry was inserted at storage position {position}: sequence number {seq} is used twice"
            ),
            Self::Reordered { first, second } => {
                write!(f, "entries {first} and {second} are stored out of order")
            }
            Self::Truncated {
                source,
                checkpoint_size,
                present,
            } => write!(
                f,
                "the log was truncated: a checkpoint ({source}) covers {checkpoint_size} entries, \
                 the log holds {present}; entries {present} to {} are missing",
                checkpoint_size - 1
            ),
            Self::RootMismatch {
                source,
                size,
                last_good,
                also,
            } => {
                write!(
                    f,
                    "the checkpoint of size {size} ({source}) does not match the entries: \
                     an entry between {last_good} and {} was changed, added or removed",
                    size.saturating_sub(1)
                )?;
                if *also > 0 {
                    write!(f, " ({also} larger checkpoint(s) fail with it)")?;
                }
                Ok(())
            }
            Self::BadCheckpoint { source, reason } => {
                write!(f, "a checkpoint ({source}) does not verify: {reason}")
            }
        }
    }
}

/// What verification found.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Report {
    /// Entries read.
    pub entries: u64,
    /// Checkpoints that verified against the entries.
    pub checkpoints_verified: u64,
    /// The largest verified checkpoint size.
    pub verified_size: u64,
    /// Problems, in the order found.
    pub findings: Vec<Finding>,
}

impl Report {
    /// Whether nothing was found.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }
}

/// One stored copy of an entry, decoded when it can be.
struct Copy<'a> {
    stored: &'a StoredEntry,
    entry: Option<Entry>,
}

/// The sequence number an unreadable entry's bytes still carry, if any.
fn loose_seq(bytes: &[u8]) -> Option<u64> {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()?
        .get("seq")?
        .as_u64()
}

/// Of several copies of one sequence number, the one that fits between its
/// neighbours (links to the entry before, is linked to by the one after; a
/// readable one; else the first stored); the others are named as inserted.
fn choose<'c, 'a>(
    copies: &'c BTreeMap<u64, Vec<Copy<'a>>>,
    findings: &mut Vec<Finding>,
) -> BTreeMap<u64, &'c Copy<'a>> {
    let mut chosen: BTreeMap<u64, &Copy<'_>> = BTreeMap::new();
    for (&seq, all) in copies {
        let before = seq
            .checked_sub(1)
            .and_then(|s| chosen.get(&s))
            .map(|c| leaf_hash(&c.stored.bytes));
        let after: Vec<Hash> = copies
            .get(&(seq + 1))
            .into_iter()
            .flatten()
            .filter_map(|c| c.entry.as_ref().map(|e| e.prev))
            .collect();
        let fit = |c: &Copy<'_>| {
            let linked = c
                .entry
                .as_ref()
                .is_some_and(|e| Some(e.prev) == before || (seq == 0 && e.prev == [0; 32]));
            let linked_to = after.contains(&leaf_hash(&c.stored.bytes));
            (u8::from(linked) + u8::from(linked_to), c.entry.is_some())
        };
        // The first stored wins a tie: `max_by_key` keeps the last maximum.
        let Some(best) = all.iter().rev().max_by_key(|c| fit(c)) else {
            continue;
        };
        for c in all {
            if !std::ptr::eq(c, best) {
                findings.push(Finding::Inserted {
                    seq,
                    position: c.stored.position,
                });
            }
        }
        chosen.insert(seq, best);
    }
    chosen
}

/// Verifies `entries` (in storage order) against `checkpoints` signed by `key`.
///
/// Each kind of change is named once, as what it is: an entry whose bytes
/// no longer decode is named (by its number when the bytes still carry one)
/// and not also counted as deleted; of two copies of one number, the one
/// that does not fit the chain is the inserted one, wherever it is stored;
/// every broken link names the entry before it as edited; a cut at the end
/// is one truncation (the largest checkpoint past the end), never a
/// deletion in the middle; and of the checkpoints an edit makes fail, the
/// smallest is named, which bounds where the change lies.
pub fn verify(
    entries: &[StoredEntry],
    checkpoints: &[StoredCheckpoint],
    key: &VerifierKey,
) -> Report {
    let mut report = Report {
        entries: entries.len() as u64,
        ..Report::default()
    };
    let findings = &mut report.findings;
    let mut copies: BTreeMap<u64, Vec<Copy<'_>>> = BTreeMap::new();
    // Unreadable entries whose number is lost: their storage positions.
    let mut unplaced: Vec<i64> = Vec::new();
    for e in entries {
        match Entry::decode(&e.bytes) {
            Ok(entry) => copies.entry(entry.seq).or_default().push(Copy {
                stored: e,
                entry: Some(entry),
            }),
            Err(err) => {
                let seq = loose_seq(&e.bytes);
                findings.push(Finding::Unreadable {
                    position: e.position,
                    seq,
                    reason: err.to_string(),
                });
                match seq {
                    Some(s) => copies.entry(s).or_default().push(Copy {
                        stored: e,
                        entry: None,
                    }),
                    None => unplaced.push(e.position),
                }
            }
        }
    }
    let chosen = choose(&copies, findings);

    // Storage order of the entries in the chain.
    let at: BTreeMap<i64, u64> = chosen
        .iter()
        .map(|(&s, c)| (c.stored.position, s))
        .collect();
    let mut last_seq: Option<u64> = None;
    for e in entries {
        let Some(&seq) = at.get(&e.position) else {
            continue;
        };
        if let Some(prev) = last_seq {
            if seq < prev {
                findings.push(Finding::Reordered {
                    first: prev,
                    second: seq,
                });
            }
        }
        last_seq = Some(seq);
    }

    // Gaps and links, in sequence order.
    let mut expected = 0u64;
    let mut prev_leaf: Option<Hash> = None;
    let mut prev_position: Option<i64> = None;
    let mut broken: Vec<u64> = Vec::new();
    for (&seq, c) in &chosen {
        if seq > expected {
            // Unreadable entries stored between the two neighbours may be
            // the missing numbers: they are named already.
            let (lo, hi) = match prev_position {
                Some(p) => (p.min(c.stored.position), p.max(c.stored.position)),
                None => (i64::MIN, c.stored.position),
            };
            let between = unplaced.iter().filter(|&&p| p > lo && p < hi).count() as u64;
            if between < seq - expected {
                findings.push(Finding::Deleted {
                    from: expected,
                    to: seq - 1,
                });
            }
            prev_leaf = None;
        }
        let want = if seq == 0 { Some([0; 32]) } else { prev_leaf };
        if let (Some(want), Some(entry)) = (want, &c.entry) {
            if entry.prev != want {
                broken.push(seq);
            }
        }
        // After an unreadable entry (named already) the link is not checked.
        prev_leaf = c.entry.as_ref().map(|_| leaf_hash(&c.stored.bytes));
        prev_position = Some(c.stored.position);
        expected = seq + 1;
    }
    // A link broken before entry b: entry b-1's content changed (or, for
    // entry 0, its own link).
    for b in broken {
        findings.push(Finding::Edited {
            seq: b.saturating_sub(1),
        });
    }

    // Entries present in order from 0: what checkpoints can be checked against.
    let mut leaves: Vec<Hash> = Vec::with_capacity(chosen.len());
    for (n, (&seq, c)) in chosen.iter().enumerate() {
        if seq != n as u64 {
            break;
        }
        leaves.push(leaf_hash(&c.stored.bytes));
    }
    let present = leaves.len() as u64;
    // Entries up to the highest sequence number stored (and unreadable ones
    // stored after it): a checkpoint larger than that was cut off at the
    // end; one the entries reach but that a gap (a deletion, already named)
    // stops short of cannot be checked, and is not a truncation.
    let stored_through = chosen.keys().next_back().map_or(0, |&s| s + 1);
    let last_position = chosen.values().map(|c| c.stored.position).max();
    let unplaced_after = unplaced
        .iter()
        .filter(|&&p| last_position.is_none_or(|l| p > l))
        .count() as u64;
    let mut cps: Vec<(String, crate::note::Checkpoint)> = Vec::new();
    for c in checkpoints {
        match key.open(&c.note) {
            Ok(cp) => cps.push((c.source.clone(), cp)),
            Err(e) => findings.push(Finding::BadCheckpoint {
                source: c.source.clone(),
                reason: e.to_string(),
            }),
        }
    }
    cps.sort_by_key(|(_, cp)| cp.size);
    let mut frontier = Frontier::default();
    let mut last_good = 0u64;
    let mut truncated: Option<(&str, u64)> = None;
    let mut mismatch: Option<usize> = None;
    for (source, cp) in &cps {
        if cp.size > stored_through + unplaced_after {
            // Sorted by size: the last one seen is the largest.
            truncated = Some((source, cp.size));
            continue;
        }
        if cp.size > present {
            continue;
        }
        while frontier.size() < cp.size {
            frontier.push(leaves[frontier.size() as usize]);
        }
        if frontier.root() == cp.root {
            last_good = cp.size;
            report.checkpoints_verified += 1;
            report.verified_size = report.verified_size.max(cp.size);
            continue;
        }
        match mismatch.and_then(|i| findings.get_mut(i)) {
            Some(Finding::RootMismatch { also, .. }) => *also += 1,
            _ => {
                mismatch = Some(findings.len());
                findings.push(Finding::RootMismatch {
                    source: source.clone(),
                    size: cp.size,
                    last_good,
                    also: 0,
                });
            }
        }
    }
    if let Some((source, checkpoint_size)) = truncated {
        findings.push(Finding::Truncated {
            source: source.to_string(),
            checkpoint_size,
            present: stored_through,
        });
    }
    report
}
