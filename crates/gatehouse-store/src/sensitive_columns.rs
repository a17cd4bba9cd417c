//! Found sensitive columns (see `gatehouse_core::SensitiveColumns`).

use crate::{rows, unavailable};
use gatehouse_core::{SensitiveColumn, StoreError, Timestamp};
use sqlx::SqlitePool;

/// What makes two records the same column: unique among those not removed.
pub(crate) fn key(c: &SensitiveColumn) -> String {
    // Each part length-prefixed: names may hold any character.
    [&c.connection, &c.schema, &c.table, &c.column]
        .iter()
        .map(|p| format!("{}:{p}", p.len()))
        .collect::<Vec<_>>()
        .join("/")
}

pub(crate) async fn save(pool: &SqlitePool, c: &SensitiveColumn) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO sensitive_columns (id, key, found_at, body_json) VALUES (?, ?, ?, ?) \
         ON CONFLICT DO NOTHING",
    )
    .bind(&c.id)
    .bind(key(c))
    .bind(c.found_at.unix_millis())
    .bind(rows::to_json(c)?)
    .execute(pool)
    .await
    .map_err(unavailable)?;
    Ok(())
}

pub(crate) async fn list(pool: &SqlitePool) -> Result<Vec<SensitiveColumn>, StoreError> {
    let bodies: Vec<String> = sqlx::query_scalar(
        "SELECT body_json FROM sensitive_columns WHERE removed_at IS NULL ORDER BY found_at, id",
    )
    .fetch_all(pool)
    .await
    .map_err(unavailable)?;
    bodies
        .iter()
        .map(|b| rows::from_json("sensitive column", b))
        .collect()
}

pub(crate) async fn remove(pool: &SqlitePool, id: &str, at: Timestamp) -> Result<(), StoreError> {
    sqlx::query("UPDATE sensitive_columns SET removed_at = ? WHERE id = ? AND removed_at IS NULL")
        .bind(at.unix_millis())
        .bind(id)
        .execute(pool)
        .await
        .map_err(unavailable)?;
    Ok(())
}
