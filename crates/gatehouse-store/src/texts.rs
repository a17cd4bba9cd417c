//! Long statement texts, stored once by content (`statement_texts`).
//!
//! A row that names a long text keeps an empty `text` and the text's
//! SHA-256 in `text_sha256`; readers join the text back. A row whose text
//! is missing is refused as malformed rather than shown empty.

use gatehouse_core::StoreError;
use sha2::{Digest, Sha256};
use sqlx::SqliteConnection;

/// Texts from this length on are stored by content.
pub(crate) const SHARED_FROM_BYTES: usize = 1024;

/// The content key of a text stored by content, or `None` for a short text
/// kept in its row.
pub(crate) fn key(text: &str) -> Option<String> {
    (text.len() >= SHARED_FROM_BYTES).then(|| hex::encode(Sha256::digest(text.as_bytes())))
}

/// Stores `text` under `key` unless it is already there.
pub(crate) async fn keep(
    conn: &mut SqliteConnection,
    key: &str,
    text: &str,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO statement_texts (sha256, text) VALUES (?, ?) ON CONFLICT DO NOTHING")
        .bind(key)
        .bind(text)
        .execute(conn)
        .await
        .map_err(super::unavailable)?;
    Ok(())
}

/// A row's text: its own, or the shared one its key names.
pub(crate) fn restore(
    what: impl FnOnce() -> String,
    own: String,
    key: Option<String>,
    shared: Option<String>,
) -> Result<String, StoreError> {
    match (key, shared) {
        (None, _) => Ok(own),
        (Some(_), Some(text)) => Ok(text),
        (Some(key), None) => Err(StoreError::Malformed(format!(
            "{}: its text (sha256 {key}) is missing from statement_texts",
            what()
        ))),
    }
}
