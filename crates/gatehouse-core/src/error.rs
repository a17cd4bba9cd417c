use thiserror::Error;

/// A failure of the persistent store. The message never carries secrets.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The storage engine failed (I/O, locking, corruption).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A row exists but cannot be decoded into the domain type.
    #[error("store holds a malformed record: {0}")]
    Malformed(String),
    /// The named record does not exist.
    #[error("not found: {0}")]
    NotFound(String),
}
