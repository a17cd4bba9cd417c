//! Session recordings every node can replay: the node that made one copies
//! the finished file here (by name, once).

use super::NOW_MILLIS;
use crate::unavailable;
use gatehouse_core::StoreError;
use sqlx::PgPool;

pub(super) async fn keep(
    pool: &PgPool,
    node: &str,
    name: &str,
    sha256: &str,
    bytes: &[u8],
) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "INSERT INTO recordings (name, node_id, sha256, bytes, stored_at) \
         VALUES ($1, $2, $3, $4, {NOW_MILLIS}) ON CONFLICT (name) DO NOTHING"
    ))
    .bind(name)
    .bind(node)
    .bind(sha256)
    .bind(bytes)
    .execute(pool)
    .await
    .map_err(unavailable)?;
    Ok(())
}

pub(super) async fn get(pool: &PgPool, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
    sqlx::query_scalar("SELECT bytes FROM recordings WHERE name = $1")
        .bind(name)
        .fetch_optional(pool)
        .await
        .map_err(unavailable)
}

pub(super) async fn names(pool: &PgPool, node: &str) -> Result<Vec<String>, StoreError> {
    sqlx::query_scalar("SELECT name FROM recordings WHERE node_id = $1 ORDER BY name")
        .bind(node)
        .fetch_all(pool)
        .await
        .map_err(unavailable)
}
