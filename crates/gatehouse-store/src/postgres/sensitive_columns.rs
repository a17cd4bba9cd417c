//! Found sensitive columns in the shared store (see the SQLite store's
//! `sensitive_columns`: the same key, unique among those not removed).

use crate::{rows, sensitive_columns::key, unavailable};
use gatehouse_core::{SensitiveColumn, StoreError, Timestamp};
use sqlx::PgPool;

pub(super) async fn save(pool: &PgPool, c: &SensitiveColumn) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO sensitive_columns (id, key, found_at, body_json) VALUES ($1, $2, $3, $4) \
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

pub(super) async fn list(pool: &PgPool) -> Result<Vec<SensitiveColumn>, StoreError> {
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

pub(super) async fn remove(pool: &PgPool, id: &str, at: Timestamp) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE sensitive_columns SET removed_at = $1 WHERE id = $2 AND removed_at IS NULL",
    )
    .bind(at.unix_millis())
    .bind(id)
    .execute(pool)
    .await
    .map_err(unavailable)?;
    Ok(())
}
