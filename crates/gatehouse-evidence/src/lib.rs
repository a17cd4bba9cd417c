//! Gatehouse evidence log.
//!
//! Every security-relevant event becomes an [`Entry`]: canonical JSON
//! ([`canonical`]) numbered per node and linked to the entry before it. The
//! entries are the leaves of an RFC 6962 Merkle tree ([`merkle`]); a node
//! signs checkpoints of the tree (origin, size, root) as C2SP signed notes
//! with its Ed25519 key ([`note`]). [`verify`] recomputes the tree from
//! stored entries and names every edited, deleted, inserted, reordered or
//! truncated entry it finds. [`EvidenceLog`] is the node's writer (group commit over an
//! [`gatehouse_core::EvidenceStore`], checkpoints, [`Witness`]es); live
//! [`Sink`]s follow the store from a saved cursor. This crate
//! knows no storage engine and no protocol.

pub mod canonical;
mod canonical_check;
mod entry;
pub mod export;
mod log;
pub mod merkle;
pub mod note;
pub mod proofs;
mod resume;
pub mod segment;
mod sink;
mod verify;
mod witness;

pub use entry::{Entry, Event, EventKind, Head};
pub use log::{EvidenceLog, LogSettings};
pub use merkle::Hash;
pub use note::{split_notes, whole_notes_end, Checkpoint, SigningKey, VerifierKey};
pub use sink::{spawn_sink, Sink, SinkEvent, SinkSettings};
pub use verify::{
    for_each_page, for_each_row, verify, verify_store, Finding, LogSource, Page, Report,
    SegmentFiles, StoredCheckpoint, StoredEntry, Verifier, Window, PAGE,
};
pub use witness::{whole_utf8, FileWitness, Witness};

/// Evidence log errors.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    /// A value that has no canonical encoding.
    #[error("cannot encode the event: {0}")]
    Encoding(String),
    /// Stored bytes that are not an entry.
    #[error("not a log entry: {0}")]
    Entry(String),
    /// A malformed checkpoint or note.
    #[error("not a valid checkpoint: {0}")]
    Checkpoint(String),
    /// A signature that does not verify.
    #[error("the signature by key {0} does not verify")]
    Signature(String),
    /// A malformed key.
    #[error("invalid key: {0}")]
    Key(String),
    /// The store could not be read or written.
    #[error("evidence store: {0}")]
    Store(String),
    /// The stored log does not verify; it is not extended.
    #[error("the evidence log does not verify, so the gateway will not extend it: {0}")]
    Damaged(String),
}
