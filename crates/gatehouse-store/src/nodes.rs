//! The SQLite store's node registry. One node uses a SQLite store, so no
//! other node is ever silent in it; the operations still behave as the
//! shared store's do (`postgres::nodes`), for one code path above.

use crate::{rows, unavailable};
use gatehouse_core::{LostNode, NodeRecord, StoreError, Timestamp};
use sqlx::SqlitePool;

/// Refuses a heartbeat for another node than the store handle's.
pub(crate) fn check_own(own: &str, node: &NodeRecord) -> Result<(), StoreError> {
    if node.id == own {
        Ok(())
    } else {
        Err(StoreError::Unavailable(format!(
            "refused a heartbeat for node {:?} through the store handle of node {own:?}",
            node.id
        )))
    }
}

/// Inserts or refreshes `node`: running, neither stopped nor lost; the
/// lost mark it cleared, if any.
pub(crate) async fn heartbeat(
    pool: &SqlitePool,
    node: &NodeRecord,
) -> Result<Option<(Timestamp, String)>, StoreError> {
    let mut tx = pool.begin().await.map_err(unavailable)?;
    let was: Option<(Option<i64>, Option<String>)> =
        sqlx::query_as("SELECT lost_at, lost_by FROM nodes WHERE id = ?")
            .bind(&node.id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(unavailable)?;
    sqlx::query(
        "INSERT INTO nodes (id, api_address, version, started_at, heartbeat_at) \
         VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET \
         api_address = excluded.api_address, version = excluded.version, \
         started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, \
         stopped_at = NULL, lost_at = NULL, lost_by = NULL",
    )
    .bind(&node.id)
    .bind(&node.api_address)
    .bind(&node.version)
    .bind(node.started_at.unix_millis())
    .bind(node.heartbeat_at.unix_millis())
    .execute(&mut *tx)
    .await
    .map_err(unavailable)?;
    tx.commit().await.map_err(unavailable)?;
    Ok(match was {
        Some((Some(at), Some(by))) => Some((Timestamp::from_unix_millis(at), by)),
        _ => None,
    })
}

/// Ends the sessions still open from before `this_run_started`: this
/// node's, and those stored before sessions named their node (one node
/// uses a SQLite store, so they are its own too).
pub(crate) async fn end_earlier_runs(
    pool: &SqlitePool,
    me: &str,
    this_run_started: Timestamp,
) -> Result<u64, StoreError> {
    let ended = sqlx::query(
        "UPDATE sessions SET ended_at = ?, end_reason = 'node_lost', end_detail = ?, \
         bytes_from_client = COALESCE(bytes_from_client, 0), \
         bytes_to_client = COALESCE(bytes_to_client, 0) \
         WHERE (node_id = ? OR node_id IS NULL) AND ended_at IS NULL AND started_at < ?",
    )
    .bind(this_run_started.unix_millis())
    .bind(rows::restarted_detail(me, this_run_started))
    .bind(me)
    .bind(this_run_started.unix_millis())
    .execute(pool)
    .await
    .map_err(unavailable)?
    .rows_affected();
    Ok(ended)
}

pub(crate) async fn stopped(pool: &SqlitePool, id: &str, at: Timestamp) -> Result<(), StoreError> {
    sqlx::query("UPDATE nodes SET stopped_at = ? WHERE id = ?")
        .bind(at.unix_millis())
        .bind(id)
        .execute(pool)
        .await
        .map_err(unavailable)?;
    Ok(())
}

pub(crate) async fn list(pool: &SqlitePool) -> Result<Vec<NodeRecord>, StoreError> {
    let rows = sqlx::query_as::<_, rows::NodeRow>("SELECT * FROM nodes ORDER BY id")
        .fetch_all(pool)
        .await
        .map_err(unavailable)?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Marks lost (by `me`, at `now`) the nodes silent since before
/// `silent_before`, and ends their open sessions, in one transaction.
pub(crate) async fn end_sessions_of_silent(
    pool: &SqlitePool,
    me: &str,
    silent_before: Timestamp,
    now: Timestamp,
) -> Result<Vec<LostNode>, StoreError> {
    let mut tx = pool.begin().await.map_err(unavailable)?;
    let silent: Vec<(String, i64)> = sqlx::query_as(
        "UPDATE nodes SET lost_at = ?, lost_by = ? WHERE id <> ? AND heartbeat_at < ? \
         AND stopped_at IS NULL AND lost_at IS NULL RETURNING id, heartbeat_at",
    )
    .bind(now.unix_millis())
    .bind(me)
    .bind(me)
    .bind(silent_before.unix_millis())
    .fetch_all(&mut *tx)
    .await
    .map_err(unavailable)?;
    let mut lost = Vec::with_capacity(silent.len());
    for (id, heartbeat_at) in silent {
        let heartbeat_at = Timestamp::from_unix_millis(heartbeat_at);
        let ended = sqlx::query(
            "UPDATE sessions SET ended_at = ?, end_reason = 'node_lost', end_detail = ?, \
             bytes_from_client = COALESCE(bytes_from_client, 0), \
             bytes_to_client = COALESCE(bytes_to_client, 0) \
             WHERE node_id = ? AND ended_at IS NULL",
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
    lost.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(lost)
}
