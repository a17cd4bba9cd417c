//! One node's evidence log as replicated in the shared store, read as an
//! [`EvidenceStore`] (see `evidence`), and the entry queries both share.

use crate::unavailable;
use async_trait::async_trait;
use gatehouse_core::{EvidenceStore, LogRow, StoreError, StoredCheckpoint};
use sqlx::PgPool;

/// A stored sequence number or tree size, which is never negative.
pub(super) fn unsigned(what: &str, n: i64) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|_| StoreError::Malformed(format!("stored {what} {n} is negative")))
}

/// The highest number of `node`'s entries here.
pub(super) async fn max_seq(pool: &PgPool, node: &str) -> Result<Option<i64>, StoreError> {
    sqlx::query_scalar("SELECT MAX(seq) FROM evidence_entries WHERE node_id = $1")
        .bind(node)
        .fetch_one(pool)
        .await
        .map_err(unavailable)
}

#[derive(sqlx::FromRow)]
pub(super) struct EntryRow {
    pub(super) seq: i64,
    pub(super) bytes: Vec<u8>,
}

/// Up to `limit` of `node`'s entries numbered `from` and after, by number:
/// through the primary key, whatever the log's length.
pub(super) async fn select_entries(
    pool: &PgPool,
    node: &str,
    from: i64,
    limit: usize,
) -> Result<Vec<EntryRow>, StoreError> {
    sqlx::query_as(
        "SELECT seq, bytes FROM evidence_entries WHERE node_id = $1 AND seq >= $2 \
         ORDER BY seq LIMIT $3",
    )
    .bind(node)
    .bind(from)
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(pool)
    .await
    .map_err(unavailable)
}

/// One node's replicated evidence log, read-only, as an [`EvidenceStore`]
/// ([`super::EvidenceReplicas::replica_log`]). The copy has no storage positions
/// of its own: an entry's position is its sequence number, which orders the
/// copy as the node's log orders the original. It keeps no writer state,
/// so it has no checkpoint to resume from, and refuses appends.
#[derive(Clone)]
pub struct ReplicaLog {
    pool: PgPool,
    node: String,
}

impl std::fmt::Debug for ReplicaLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicaLog")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl ReplicaLog {
    pub(super) fn new(pool: PgPool, node: &str) -> Self {
        Self {
            pool,
            node: node.to_string(),
        }
    }

    /// The node whose log this is.
    pub fn node(&self) -> &str {
        &self.node
    }

    fn log_rows(rows: Vec<EntryRow>) -> Vec<LogRow> {
        rows.into_iter()
            .map(|r| LogRow {
                position: r.seq,
                seq: r.seq,
                bytes: r.bytes,
            })
            .collect()
    }
}

#[async_trait]
impl EvidenceStore for ReplicaLog {
    fn append_blocking(
        &self,
        _entries: &[(u64, Vec<u8>)],
        _checkpoint: Option<StoredCheckpoint>,
    ) -> Result<(), StoreError> {
        Err(StoreError::Unavailable(format!(
            "a replica is read-only: node {}'s evidence log is written by that node",
            self.node
        )))
    }

    async fn entries_after(
        &self,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Vec<LogRow>, StoreError> {
        // Positions are numbers, never negative: from the first unless after one.
        let from = match after {
            None => 0,
            Some(after) => match after.checked_add(1) {
                Some(next) => next.max(0),
                None => return Ok(Vec::new()),
            },
        };
        let rows = select_entries(&self.pool, &self.node, from, limit).await?;
        Ok(Self::log_rows(rows))
    }

    async fn entries_from(&self, first: u64, limit: usize) -> Result<Vec<LogRow>, StoreError> {
        let Ok(first) = i64::try_from(first) else {
            // Beyond any stored number.
            return Ok(Vec::new());
        };
        let rows = select_entries(&self.pool, &self.node, first, limit).await?;
        Ok(Self::log_rows(rows))
    }

    async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        Ok(None)
    }

    async fn checkpoints(&self) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar("SELECT note FROM evidence_checkpoints WHERE node_id = $1 ORDER BY size")
            .bind(&self.node)
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)
    }

    async fn last_seq(&self) -> Result<Option<u64>, StoreError> {
        let seq = max_seq(&self.pool, &self.node).await?;
        seq.map(|s| unsigned("sequence number", s)).transpose()
    }

    async fn last_position(&self) -> Result<Option<i64>, StoreError> {
        max_seq(&self.pool, &self.node).await
    }
}
