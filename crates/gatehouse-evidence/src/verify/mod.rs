//! Verification of a stored log: every entry decodes, the sequence has no
//! gaps, duplicates or reorderings, every entry links to the one before,
//! and every signed checkpoint (from the store or a witness) matches the
//! tree recomputed from the entries.

mod store;
mod stream;
mod window;

pub use store::{for_each_page, for_each_row, verify_store, LogSource, Page, SegmentFiles, PAGE};
pub use stream::{ReadRow, Verifier, Window};

use crate::note::VerifierKey;
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
    /// An entry filed under a number not its own: readers that find
    /// entries by number (live sinks, a restart) would miss it or take
    /// another in its place.
    Misfiled {
        /// Storage position.
        position: i64,
        /// Its own number.
        seq: u64,
        /// The number it is filed under.
        filed: i64,
    },
    /// A sealed segment's file no longer hashes to the SHA-256 recorded
    /// when it was sealed (what changed in it is named as well).
    SegmentChanged {
        /// The segment.
        segment: u64,
        /// The SHA-256 recorded.
        recorded: String,
        /// The file's now.
        found: String,
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
            Self::Misfiled {
                position,
                seq,
                filed,
            } => write!(
                f,
                "entry {seq} (storage position {position}) is filed as entry {filed}: \
                 readers that find entries by number (live sinks) would miss it"
            ),
            Self::SegmentChanged {
                segment,
                recorded,
                found,
            } => write!(
                f,
                "segment {segment}'s file does not hash to the SHA-256 recorded when it was \
                 sealed ({recorded}; now {found}): it was changed"
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
    /// Problems found beyond the most a report lists.
    pub more_findings: u64,
}

impl Report {
    /// Whether nothing was found.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty() && self.more_findings == 0
    }
}

/// Verifies `entries` (in storage order) against `checkpoints` signed by
/// `key`: [`Verifier`] over a slice.
pub fn verify(
    entries: &[StoredEntry],
    checkpoints: &[StoredCheckpoint],
    key: &VerifierKey,
) -> Report {
    let mut v = Verifier::new(checkpoints.iter().cloned(), key);
    for e in entries {
        v.push(e.position, &e.bytes);
    }
    v.finish()
}
