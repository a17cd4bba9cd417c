//! PostgreSQL protocol 3.0 codec: framing, and the few messages the gateway
//! reads or writes itself. Relayed messages are never decoded beyond what the
//! gate needs; they are forwarded as the bytes that arrived.
//!
//! Every decoder takes untrusted bytes and returns an error rather than
//! panicking (property-tested in `tests`).

pub mod backend;
mod cursor;
mod frame;
pub mod frontend;
pub mod msg;
pub mod startup;
pub(crate) mod write;

pub use cursor::Cursor;
pub use frame::{Flow, FrameError, FrameScanner, Scanned};

/// A message the gateway cannot accept.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    /// The message ended before a field did.
    #[error("message truncated while reading {0}")]
    Truncated(&'static str),
    /// A string was not NUL-terminated.
    #[error("string field {0} is not terminated")]
    Unterminated(&'static str),
    /// A string was not valid UTF-8.
    #[error("field {0} is not valid UTF-8")]
    NotUtf8(&'static str),
    /// A length or count was negative or out of range.
    #[error("invalid {0}")]
    Invalid(&'static str),
    /// A message type the gateway did not expect here.
    #[error("unexpected message type {0:?}")]
    Unexpected(char),
}

#[cfg(test)]
mod tests;
