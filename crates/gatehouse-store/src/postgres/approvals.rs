//! Approval requests in the shared store. Every write is conditional where
//! nodes may race (a vote, a use), stamps `changed_at` with the server's
//! clock (so nodes whose clocks disagree still see each other's changes in
//! order), and notifies the other nodes.

use super::listener::{notify, Change};
use super::{texts, NOW_MILLIS};
use crate::{rows, unavailable};
use gatehouse_core::{ApprovalId, ApprovalRequest, ApprovalState, StoreError, Timestamp};
use rows::APPROVAL_COLUMNS;
use sqlx::PgPool;

/// Stores a new request, or replaces one unconditionally.
pub(super) async fn save(pool: &PgPool, r: &ApprovalRequest) -> Result<(), StoreError> {
    let (body, text_key) = rows::approval_body(r)?;
    let mut tx = pool.begin().await.map_err(unavailable)?;
    if let Some(key) = &text_key {
        texts::keep_one(&mut tx, key, &r.text).await?;
    }
    sqlx::query(&format!(
        "INSERT INTO approvals (id, state, fingerprint, created_at, expires_at, body_json, \
         text_sha256, vote_count, changed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, {NOW_MILLIS}) \
         ON CONFLICT (id) DO UPDATE SET state = excluded.state, body_json = excluded.body_json, \
         text_sha256 = excluded.text_sha256, vote_count = excluded.vote_count, \
         changed_at = excluded.changed_at"
    ))
    .bind(&r.id.0)
    .bind(r.state.as_str())
    .bind(&r.fingerprint)
    .bind(r.created_at.unix_millis())
    .bind(r.expires_at.unix_millis())
    .bind(body)
    .bind(text_key)
    .bind(r.votes.len() as i64)
    .execute(&mut *tx)
    .await
    .map_err(unavailable)?;
    notify(&mut tx, Change::Approval).await?;
    tx.commit().await.map_err(unavailable)
}

/// Replaces request `r.id` if it is still in state `was` with `was_votes`
/// votes; `false` (nothing written) when another node changed it.
pub(super) async fn update(
    pool: &PgPool,
    r: &ApprovalRequest,
    was: ApprovalState,
    was_votes: usize,
) -> Result<bool, StoreError> {
    let (body, text_key) = rows::approval_body(r)?;
    let mut tx = pool.begin().await.map_err(unavailable)?;
    if let Some(key) = &text_key {
        texts::keep_one(&mut tx, key, &r.text).await?;
    }
    let changed = sqlx::query(&format!(
        "UPDATE approvals SET state = $1, body_json = $2, text_sha256 = $3, vote_count = $4, \
         changed_at = {NOW_MILLIS} WHERE id = $5 AND state = $6 AND vote_count = $7"
    ))
    .bind(r.state.as_str())
    .bind(body)
    .bind(text_key)
    .bind(r.votes.len() as i64)
    .bind(&r.id.0)
    .bind(was.as_str())
    .bind(was_votes as i64)
    .execute(&mut *tx)
    .await
    .map_err(unavailable)?
    .rows_affected()
        == 1;
    if !changed {
        // Dropping the transaction rolls back the text kept for nothing.
        return Ok(false);
    }
    notify(&mut tx, Change::Approval).await?;
    tx.commit().await.map_err(unavailable)?;
    Ok(true)
}

/// Marks approval `id` used at `at` if it is approved: its state column and
/// the state and `used_at` of its JSON body (a Timestamp is an RFC 3339
/// string there), in one conditional statement. Of nodes racing on it, the
/// first to update the row uses it; the others find it `used` once that
/// commits, and change nothing.
pub(super) async fn use_once(
    pool: &PgPool,
    id: &ApprovalId,
    at: Timestamp,
) -> Result<bool, StoreError> {
    // The body is rewritten here rather than cast to jsonb, which refuses
    // a NUL (`\u0000`) a statement's text or parameters may hold. Reading
    // it first is safe: an approved request's body changes only with its
    // state, and the UPDATE is conditional on the state read.
    let body: Option<String> =
        sqlx::query_scalar("SELECT body_json FROM approvals WHERE id = $1 AND state = 'approved'")
            .bind(&id.0)
            .fetch_optional(pool)
            .await
            .map_err(unavailable)?;
    let Some(body) = body else {
        return Ok(false);
    };
    let mut value: serde_json::Value = rows::from_json("approval", &body)?;
    value["state"] = serde_json::Value::String("used".into());
    value["used_at"] =
        serde_json::to_value(at).map_err(|e| StoreError::Malformed(e.to_string()))?;
    let mut tx = pool.begin().await.map_err(unavailable)?;
    let used = sqlx::query(&format!(
        "UPDATE approvals SET state = 'used', body_json = $2, \
         changed_at = {NOW_MILLIS} WHERE id = $1 AND state = 'approved'"
    ))
    .bind(&id.0)
    .bind(rows::to_json(&value)?)
    .execute(&mut *tx)
    .await
    .map_err(unavailable)?
    .rows_affected()
        == 1;
    if used {
        notify(&mut tx, Change::Approval).await?;
        tx.commit().await.map_err(unavailable)?;
    }
    Ok(used)
}

/// The requests written at or after `since` by the server's clock (all when
/// `None`), oldest change first, with the server's clock as read before.
pub(super) async fn changed_since(
    pool: &PgPool,
    since: Option<Timestamp>,
    limit: u32,
) -> Result<gatehouse_core::ApprovalChanges, StoreError> {
    let now: i64 = sqlx::query_scalar(&format!("SELECT {NOW_MILLIS}"))
        .fetch_one(pool)
        .await
        .map_err(unavailable)?;
    let rows = sqlx::query_as::<_, rows::ChangedApprovalRow>(&format!(
        "{} WHERE a.changed_at >= $1 ORDER BY a.changed_at, a.id LIMIT $2",
        rows::CHANGED_APPROVAL_COLUMNS
    ))
    .bind(since.map_or(i64::MIN, Timestamp::unix_millis))
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .map_err(unavailable)?;
    Ok(rows::changed_requests(
        Timestamp::from_unix_millis(now),
        rows,
        limit,
    ))
}

pub(super) async fn get(
    pool: &PgPool,
    id: &ApprovalId,
) -> Result<Option<ApprovalRequest>, StoreError> {
    let row =
        sqlx::query_as::<_, rows::ApprovalRow>(&format!("{APPROVAL_COLUMNS} WHERE a.id = $1"))
            .bind(&id.0)
            .fetch_optional(pool)
            .await
            .map_err(unavailable)?;
    row.map(TryInto::try_into).transpose()
}

/// Keyset pages over (state, created_at, id): each page costs its own rows.
pub(super) async fn list_after(
    pool: &PgPool,
    state: ApprovalState,
    after: Option<&(Timestamp, ApprovalId)>,
    limit: u32,
) -> Result<Vec<ApprovalRequest>, StoreError> {
    let (after_at, after_id) = match after {
        Some((at, id)) => (at.unix_millis(), id.0.as_str()),
        None => (i64::MIN, ""),
    };
    let rows = sqlx::query_as::<_, rows::ApprovalRow>(&format!(
        "{APPROVAL_COLUMNS} WHERE a.state = $1 AND (a.created_at, a.id) > ($2, $3) \
         ORDER BY a.created_at, a.id LIMIT $4"
    ))
    .bind(state.as_str())
    .bind(after_at)
    .bind(after_id)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .map_err(unavailable)?;
    rows.into_iter().map(TryInto::try_into).collect()
}

pub(super) async fn list(
    pool: &PgPool,
    state: Option<ApprovalState>,
    limit: u32,
) -> Result<Vec<ApprovalRequest>, StoreError> {
    let rows = sqlx::query_as::<_, rows::ApprovalRow>(&format!(
        "{APPROVAL_COLUMNS} WHERE ($1::text IS NULL OR a.state = $1) \
         ORDER BY a.created_at DESC, a.id DESC LIMIT $2"
    ))
    .bind(state.map(ApprovalState::as_str))
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .map_err(unavailable)?;
    rows.into_iter().map(TryInto::try_into).collect()
}
