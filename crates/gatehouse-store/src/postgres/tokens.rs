//! Tokens in the shared store. A revocation notifies the other nodes,
//! which may hold the token in a cache.

use super::listener::{notify, Change};
use crate::{rows, unavailable};
use gatehouse_core::{StoreError, Timestamp, TokenId, TokenRecord};
use sqlx::PgPool;

pub(super) async fn insert(pool: &PgPool, t: &TokenRecord) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO tokens (id, identity, groups_json, secret_hash, created_at, expires_at, \
         revoked_at, ssh_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&t.id.0)
    .bind(&t.identity)
    .bind(rows::to_json(&t.groups)?)
    .bind(&t.secret_hash)
    .bind(t.created_at.unix_millis())
    .bind(t.expires_at.unix_millis())
    .bind(t.revoked_at.map(Timestamp::unix_millis))
    .bind(&t.ssh_key)
    .execute(pool)
    .await
    .map_err(unavailable)?;
    Ok(())
}

pub(super) async fn find(pool: &PgPool, id: &TokenId) -> Result<Option<TokenRecord>, StoreError> {
    let row = sqlx::query_as::<_, rows::TokenRow>("SELECT * FROM tokens WHERE id = $1")
        .bind(&id.0)
        .fetch_optional(pool)
        .await
        .map_err(unavailable)?;
    row.map(TryInto::try_into).transpose()
}

pub(super) async fn list(pool: &PgPool) -> Result<Vec<TokenRecord>, StoreError> {
    let rows =
        sqlx::query_as::<_, rows::TokenRow>("SELECT * FROM tokens ORDER BY created_at DESC, id")
            .fetch_all(pool)
            .await
            .map_err(unavailable)?;
    rows.into_iter().map(TryInto::try_into).collect()
}

/// Marks token `id` revoked at `at`, keeping the first time if revoked
/// twice.
pub(super) async fn revoke(
    pool: &PgPool,
    id: &TokenId,
    at: Timestamp,
) -> Result<TokenRecord, StoreError> {
    let mut tx = pool.begin().await.map_err(unavailable)?;
    let row = sqlx::query_as::<_, rows::TokenRow>(
        "UPDATE tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2 RETURNING *",
    )
    .bind(at.unix_millis())
    .bind(&id.0)
    .fetch_optional(&mut *tx)
    .await
    .map_err(unavailable)?;
    let Some(row) = row else {
        return Err(StoreError::NotFound(format!("token {id}")));
    };
    notify(&mut tx, Change::Token).await?;
    tx.commit().await.map_err(unavailable)?;
    row.try_into()
}
