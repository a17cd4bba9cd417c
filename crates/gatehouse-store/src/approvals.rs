//! The SQLite store's conditional approval writes and its change feed.
//!
//! The shared PostgreSQL store has the same operations (`postgres::approvals`);
//! here one node is the only writer, but the semantics are the same so the
//! approval desk above need not know which store it has.

use crate::{rows, texts, unavailable};
use gatehouse_core::{ApprovalId, ApprovalRequest, ApprovalState, StoreError, Timestamp};

use sqlx::SqlitePool;

/// Replaces request `r.id` if it is still in state `was` with `was_votes`
/// votes; `false` (nothing written) otherwise.
pub(crate) async fn update(
    pool: &SqlitePool,
    r: &ApprovalRequest,
    was: ApprovalState,
    was_votes: usize,
) -> Result<bool, StoreError> {
    let (body, text_key) = rows::approval_body(r)?;
    let mut tx = pool.begin().await.map_err(unavailable)?;
    if let Some(key) = &text_key {
        texts::keep(&mut tx, key, &r.text).await?;
    }
    let changed = sqlx::query(
        "UPDATE approvals SET state = ?, body_json = ?, text_sha256 = ?, vote_count = ?, \
         changed_at = ? WHERE id = ? AND state = ? AND vote_count = ?",
    )
    .bind(r.state.as_str())
    .bind(body)
    .bind(text_key)
    .bind(r.votes.len() as i64)
    .bind(Timestamp::now().unix_millis())
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
    tx.commit().await.map_err(unavailable)?;
    Ok(true)
}

/// Marks approval `id` used at `at` if it is approved: its state column and
/// the state and `used_at` of its JSON body, in one conditional statement.
pub(crate) async fn use_once(
    pool: &SqlitePool,
    id: &ApprovalId,
    at: Timestamp,
) -> Result<bool, StoreError> {
    // A Timestamp is a JSON string (RFC 3339); a bound TEXT becomes one.
    let used = sqlx::query(
        "UPDATE approvals SET state = 'used', \
         body_json = json_set(body_json, '$.state', 'used', '$.used_at', ?), changed_at = ? \
         WHERE id = ? AND state = 'approved'",
    )
    .bind(at.rfc3339())
    .bind(Timestamp::now().unix_millis())
    .bind(&id.0)
    .execute(pool)
    .await
    .map_err(unavailable)?
    .rows_affected();
    Ok(used == 1)
}

/// The approvals written at or after `since` (all when `None`), oldest change
/// first, with the clock as read before them.
pub(crate) async fn changed_since(
    pool: &SqlitePool,
    since: Option<Timestamp>,
    limit: u32,
) -> Result<gatehouse_core::ApprovalChanges, StoreError> {
    let now = Timestamp::now();
    let rows = sqlx::query_as::<_, rows::ChangedApprovalRow>(&format!(
        "{} WHERE a.changed_at >= ? ORDER BY a.changed_at, a.id LIMIT ?",
        rows::CHANGED_APPROVAL_COLUMNS
    ))
    .bind(since.map_or(i64::MIN, Timestamp::unix_millis))
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .map_err(unavailable)?;
    Ok(rows::changed_requests(now, rows, limit))
}
