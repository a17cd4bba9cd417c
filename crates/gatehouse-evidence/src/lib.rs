//! Gatehouse evidence log.
//!
//! Every security-relevant event becomes an [`Entry`]: canonical JSON
//! ([`canonical`]) numbered per node and linked to the entry before it. The
//! entries are the leaves of an RFC 6962 Merkle tree ([`merkle`]); a node
//! signs checkpoints of the tree (origin, size, root) as C2SP signed notes
//! with its Ed25519 key ([`note`]). [`verify`] recomputes the tree from
//! stored entries and names every edited, deleted, inserted, reordered or
//! truncated entry it finds. This crate knows no storage and no protocol.

pub mod canonical;
mod entry;
pub mod merkle;
pub mod note;
mod verify;

pub use entry::{Entry, Event, EventKind};
pub use merkle::Hash;
pub use note::{Checkpoint, SigningKey, VerifierKey};
pub use verify::{verify, Finding, Report, StoredCheckpoint, StoredEntry};

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
}
