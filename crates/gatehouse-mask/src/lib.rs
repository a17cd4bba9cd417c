//! Gatehouse masking engine.
//!
//! Finds sensitive values (payment cards, SSNs, emails, phone numbers, IBANs,
//! IP addresses, secrets, and custom patterns) in bytes and replaces them by
//! a strategy (`redact`, `partial`, `hash`, `null`); column rules mask a
//! whole column whatever its content. The engine knows no wire protocol: the
//! PostgreSQL adapter decides which bytes are text and calls it per value.
//!
//! A value without any candidate costs one pass of a combined DFA and no
//! allocation; candidates are then matched per detector and validated
//! (Luhn, mod-97, issuer prefixes, SSN ranges), so look-alikes such as order
//! numbers, timestamps and version strings stay clear.

mod detectors;
mod engine;
mod json;
mod json_stream;
mod jsonpath;
mod rules;
mod strategy;
mod unescape;
mod validate;
pub mod work;

pub use detectors::{builtin, group, BuiltinDetector, BUILTIN};
pub use engine::{DetectorSpec, MaskTally, Masked, MaskingEngine, Scratch, TextKind};
pub use json_stream::{JsonStream, JsonStreamError, MAX_DEPTH};
pub use jsonpath::{JsonPath, PathStep};
pub use rules::{name_matches, ColumnRule, ColumnTarget, SourceColumn};
pub use strategy::{HashKey, Strategy};
pub use unescape::control_escape;
pub use validate::Validator;

/// Errors in a masking configuration.
#[derive(Debug, thiserror::Error)]
pub enum MaskError {
    /// Not a strategy.
    #[error(
        "unknown strategy {0:?}: use redact, null, hash, partial or partial:N (N from 1 to 32)"
    )]
    Strategy(String),
    /// A detector's pattern does not compile.
    #[error("detector {detector:?}: pattern does not compile: {reason}")]
    Pattern {
        /// Detector name.
        detector: String,
        /// The regex crate's message.
        reason: String,
    },
    /// Not `schema.table.column` or `table.column`.
    #[error("{0:?} is not schema.table.column or table.column")]
    Column(String),
    /// Not a column name pattern.
    #[error("{0:?} is not a column name pattern (use * and ?, no dots)")]
    ColumnPattern(String),
    /// Not a JSON path of the supported subset.
    #[error("{0:?} is not a JSON path: {1}")]
    JsonPath(String, String),
    /// The hash key is not 64 hex digits.
    #[error("the masking hash key must be 64 hex digits (32 bytes)")]
    HashKey,
}
