//! The nodes sharing the store: heartbeats, clean stops, and ending the
//! open sessions of a node that fell silent (it crashed, or lost the store)
//! so they do not stay open forever in the records.

use crate::{rows, unavailable};
use gatehouse_core::{LostNode, NodeRecord, StoreError, Timestamp};
use sqlx::PgPool;

/// Inserts or refreshes `node`: running, neither stopped nor lost.
pub(super) async fn heartbeat(pool: &PgPool, node: &NodeRecord) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO nodes (id, api_address, version, started_at, heartbeat_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE SET \
         api_address = excluded.api_address, version = excluded.version, \
         started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, \
         stopped_at = NULL, lost_at = NULL, lost_by = NULL",
    )
    .bind(&node.id)
    .bind(&node.api_address)
    .bind(&node.version)
    .bind(node.started_at.unix_millis())
    .bind(node.heartbeat_at.unix_millis())
    .execute(pool)
    .await
    .map_err(unavailable)?;
    Ok(())
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

/// Marks lost (by `me`, at `now`) every other node silent since before
/// `silent_before` that neither stopped nor was marked lost, and ends its
/// open sessions, in one transaction. Nodes doing this at once do not both
/// take a node: the second one's UPDATE waits for the first's row lock,
/// then finds `lost_at` set and skips the row.
pub(super) async fn end_sessions_of_silent(
    pool: &PgPool,
    me: &str,
    silent_before: Timestamp,
    now: Timestamp,
) -> Result<Vec<LostNode>, StoreError> {
    let mut tx = pool.begin().await.map_err(unavailable)?;
    let mut silent: Vec<(String, i64)> = sqlx::query_as(
        "UPDATE nodes SET lost_at = $1, lost_by = $2 WHERE id <> $2 AND heartbeat_at < $3 \
         AND stopped_at IS NULL AND lost_at IS NULL RETURNING id, heartbeat_at",
    )
    .bind(now.unix_millis())
    .bind(me)
    .bind(silent_before.unix_millis())
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
