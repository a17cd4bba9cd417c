//! Long texts in the shared store (see the crate's `texts`), and the one
//! character PostgreSQL text cannot hold.

use crate::{insert_chunks, unavailable};
use gatehouse_core::StoreError;
use sqlx::PgConnection;
use std::collections::BTreeMap;

/// Texts per INSERT at most (2 parameters each).
const TEXTS_PER_INSERT: usize = 1024;

/// `text` as PostgreSQL can store it: a `text` value cannot hold NUL, and
/// a record refused for one would be tried again forever by the recorder,
/// so NUL is kept as U+FFFD (the replacement character).
pub(super) fn storable(text: String) -> String {
    if text.contains('\0') {
        text.replace('\0', "\u{FFFD}")
    } else {
        text
    }
}

/// Stores each text under its key unless it is already there. Keys go in
/// order, so two transactions keeping the same texts wait for each other
/// rather than deadlock.
pub(super) async fn keep(
    conn: &mut PgConnection,
    texts: &BTreeMap<String, &str>,
) -> Result<(), StoreError> {
    let texts: Vec<(&String, &&str)> = texts.iter().collect();
    for chunk in insert_chunks(&texts, TEXTS_PER_INSERT) {
        let mut q = sqlx::QueryBuilder::<sqlx::Postgres>::new(
            "INSERT INTO statement_texts (sha256, text) ",
        );
        q.push_values(chunk, |mut b, (key, text)| {
            b.push_bind((*key).clone())
                .push_bind(storable(text.to_string()));
        });
        q.push(" ON CONFLICT DO NOTHING");
        q.build().execute(&mut *conn).await.map_err(unavailable)?;
    }
    Ok(())
}

/// [`keep`] for one text.
pub(super) async fn keep_one(
    conn: &mut PgConnection,
    key: &str,
    text: &str,
) -> Result<(), StoreError> {
    keep(conn, &BTreeMap::from([(key.to_string(), text)])).await
}
