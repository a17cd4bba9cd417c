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

/// Something verification found wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finding {
    /// An entry's bytes are not a valid canonical entry.
    Unreadable {
        /// Storage position.
        position: i64,
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
            Self::Unreadable { position, reason } => {
                write!(f, "entry at storage position {position} is unreadable: {reason}")
            }
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
            } => write!(
                f,
                "the checkpoint of size {size} ({source}) does not match the entries: \
                 an entry between {last_good} and {} was changed, added or removed",
                size.saturating_sub(1)
            ),
            Self::BadCheckpoint { source, reason } => {
                write!(f, "a checkpoint ({source}) does not verify: {reason}")
            }
        }
    }
}

/// What verification found.
#[derive(Clone, Debug, Default)]
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

/// Verifies `entries` (in storage order) against `checkpoints` signed by `key`.
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
    // Decode, and note storage order problems.
    let mut by_seq: BTreeMap<u64, (&StoredEntry, Entry)> = BTreeMap::new();
    let mut last_seq: Option<u64> = None;
    for e in entries {
        let entry = match Entry::decode(&e.bytes) {
            Ok(x) => x,
            Err(err) => {
                findings.push(Finding::Unreadable {
                    position: e.position,
                    reason: err.to_string(),
                });
                continue;
            }
        };
        if let Some(prev) = last_seq {
            if entry.seq < prev && !by_seq.contains_key(&entry.seq) {
                findings.push(Finding::Reordered {
                    first: prev,
                    second: entry.seq,
                });
            }
        }
        last_seq = Some(entry.seq);
        if by_seq.contains_key(&entry.seq) {
            findings.push(Finding::Inserted {
                seq: entry.seq,
                position: e.position,
            });
            continue;
        }
        by_seq.insert(entry.seq, (e, entry));
    }
    // Gaps and links, in sequence order.
    let mut expected = 0u64;
    let mut prev_leaf: Option<Hash> = None;
    let mut broken: Vec<u64> = Vec::new();
    for (&seq, (stored, entry)) in &by_seq {
        if seq > expected {
            findings.push(Finding::Deleted {
                from: expected,
                to: seq - 1,
            });
            prev_leaf = None;
        }
        let want = if seq == 0 { Some([0; 32]) } else { prev_leaf };
        if let Some(want) = want {
            if entry.prev != want {
                broken.push(seq);
            }
        }
        prev_leaf = Some(leaf_hash(&stored.bytes));
        expected = seq + 1;
    }
    // A break before entry b means entry b-1 changed, unless b itself changed
    // (then the link after b breaks too).
    let mut i = 0;
    while i < broken.len() {
        let b = broken[i];
        if i + 1 < broken.len() && broken[i + 1] == b + 1 {
            findings.push(Finding::Edited { seq: b });
            i += 2;
        } else {
            findings.push(Finding::Edited {
                seq: b.saturating_sub(1),
            });
            i += 1;
        }
    }
    // Entries present in order from 0: what checkpoints can be checked against.
    let mut leaves: Vec<Hash> = Vec::with_capacity(by_seq.len());
    for (n, (&seq, (stored, _))) in by_seq.iter().enumerate() {
        if seq != n as u64 {
            break;
        }
        leaves.push(leaf_hash(&stored.bytes));
    }
    let present = leaves.len() as u64;
    // Entries up to the highest sequence number stored: a checkpoint larger
    // than that was cut off at the end; one the entries reach but that a
    // gap (a deletion, already named) stops short of cannot be checked, and
    // is not a truncation.
    let stored_through = by_seq.keys().next_back().map_or(0, |&s| s + 1);
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
    for (source, cp) in &cps {
        if cp.size > stored_through {
            findings.push(Finding::Truncated {
                source: source.clone(),
                checkpoint_size: cp.size,
                present: stored_through,
            });
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
        } else {
            findings.push(Finding::RootMismatch {
                source: source.clone(),
                size: cp.size,
                last_good,
            });
        }
    }
    report
}
