//! The nodes sharing the store: heartbeats, clean stops, and ending the
//! open sessions of a node that fell silent (it crashed, or lost the store)
//! so they do not stay open forever in the records.

use super::NOW_MILLIS;
use crate::{rows, unavailable};
use gatehouse_core::{LostNode, NodeRecord, StoreError, Timestamp};
use sqlx::PgPool;

/// Inserts or refreshes `node`: running, neither stopped nor lost, its
/// heartbeat stamped with the store's clock (the nodes' clocks may differ,
/// and another node compares it with "now"). Returns the lost mark it
/// cleared, if the node had been taken for lost.
pub(super) async fn heartbeat(
    pool: &PgPool,
    node: &NodeRecord,
) -> Result<Option<(Timestamp, String)>, StoreError> {
    let mut tx = pool.begin().await.map_err(unavailable)?;
    let was: Option<(Option<i64>, Option<String>)> =
        sqlx::query_as("SELECT lost_at, lost_by FROM nodes WHERE id = $1 FOR UPDATE")
            .bind(&node.id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(unavailable)?;
    sqlx::query(&format!(
        "INSERT INTO nodes (id, api_address, version, started_at, heartbeat_at) \
         VALUES ($1, $2, $3, $4, {NOW_MILLIS}) ON CONFLICT (id) DO UPDATE SET \
         api_address = excluded.api_address, version = excluded.version, \
         started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, \
         stopped_at = NULL, lost_at = NULL, lost_by = NULL"
    ))
    .bind(&node.id)
    .bind(&node.api_address)
    .bind(&node.version)
    .bind(node.started_at.unix_millis())
    .execute(&mut *tx)
    .await
    .map_err(unavailable)?;
    tx.commit().await.map_err(unavailable)?;
    Ok(match was {
        Some((Some(at), Some(by))) => Some((Timestamp::from_unix_millis(at), by)),
        _ => None,
    })
}

/// Ends `me`'s sessions still open from before `this_run_started`.
pub(super) async fn end_earlier_runs(
    pool: &PgPool,
    me: &str,
    this_run_started: Timestamp,
) -> Result<u64, StoreError> {
    let ended = sqlx::query(&format!(
        "UPDATE sessions SET ended_at = {NOW_MILLIS}, end_reason = 'node_lost', end_detail = $1, \
         bytes_from_client = COALESCE(bytes_from_client, 0), \
         bytes_to_client = COALESCE(bytes_to_client, 0) \
         WHERE node_id = $2 AND ended_at IS NULL AND started_at < $3"
    ))
    .bind(rows::restarted_detail(me, this_run_started))
    .bind(me)
    .bind(this_run_started.unix_millis())
    .execute(pool)
    .await
    .map_err(unavailable)?
    .rows_affected();
    Ok(ended)
}

pub(super) async fn stopped(pool: &PgPool, id: &str, at: Timestamp) -> Result<(), StoreError> {
    sqlx::query("UPDATE nodes SET stopped_at = $1 WHERE id = $2")
        .bind(at.unix_millis())
        .bind(id)
        .execute(pool)
        .await
        .map_err(unavailable)?;
    Ok(())
}

pub(super) async fn list(pool: &PgPool) -> Result<Vec<NodeRecord>, StoreError> {
    let rows = sqlx::query_as::<_, rows::NodeRow>("SELECT * FROM nodes ORDER BY id")
        .fetch_all(pool)
        .await
        .map_err(unavailable)?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Marks lost (by `me`, now by the store's clock) every other node silent
/// for `silent_for` that neither stopped nor was marked lost, and ends its
/// open sessions, in one transaction. Nodes doing this at once do not both
/// take a node: the second one's UPDATE waits for the first's row lock,
/// then finds `lost_at` set and skips the row.
pub(super) async fn end_sessions_of_silent(
    pool: &PgPool,
    me: &str,
    silent_for: std::time::Duration,
) -> Result<Vec<LostNode>, StoreError> {
    let mut tx = pool.begin().await.map_err(unavailable)?;
    let now: i64 = sqlx::query_scalar(&format!("SELECT {NOW_MILLIS}"))
        .fetch_one(&mut *tx)
        .await
        .map_err(unavailable)?;
    let now = Timestamp::from_unix_millis(now);
    let silent_for = i64::try_from(silent_for.as_millis()).unwrap_or(i64::MAX);
    let mut silent: Vec<(String, i64)> = sqlx::query_as(
        "UPDATE nodes SET lost_at = $1, lost_by = $2 WHERE id <> $2 AND heartbeat_at < $3 \
         AND stopped_at IS NULL AND lost_at IS NULL RETURNING id, heartbeat_at",
    )
    .bind(now.unix_millis())
    .bind(me)
    .bind(now.unix_millis().saturating_sub(silent_for))
    .fetch_all(&mut *tx)
    .await
    .map_err(unavailable)?;
    silent.sort();
    let mut lost = Vec::with_capacity(silent.len());
    for (id, heartbeat_at) in silent {
        let heartbeat_at = Timestamp::from_unix_millis(heartbeat_at);
        let ended = sqlx::query(
            "UPDATE sessions SET ended_at = $1, end_reason = 'node_lost', end_detail = $2, \
             bytes_from_client = COALESCE(bytes_from_client, 0), \
             bytes_to_client = COALESCE(bytes_to_client, 0) \
             WHERE node_id = $3 AND ended_at IS NULL",
        )
        .bind(now.unix_millis())
        .bind(rows::node_lost_detail(&id, heartbeat_at, me))
        .bind(&id)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?
        .rows_affected();
        lost.push(LostNode {
            id,
            heartbeat_at,
            sessions_ended: ended,
        });
    }
    tx.commit().await.map_err(unavailable)?;
    Ok(lost)
}
