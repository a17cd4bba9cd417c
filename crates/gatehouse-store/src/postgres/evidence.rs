//! Every node's evidence log, replicated in the shared store, and the
//! nodes' witness cosignatures of each other's checkpoints.
//!
//! Each node keeps its evidence log locally and copies its entries and
//! signed checkpoints here in the background; each node then checks the
//! others' checkpoints against these copies and cosigns them. One
//! verification from any node thus covers the whole fleet, and a node that
//! rewrote its own log would contradict the copies and cosignatures the
//! others hold. Rows are only inserted, never changed: a copy retried
//! after a commit whose success was lost changes nothing.

use super::listener::{notify, Change};
use super::replica_log::{max_seq, select_entries, unsigned, ReplicaLog};
use super::NOW_MILLIS;
use crate::{insert_chunks, unavailable};
use gatehouse_core::StoreError;
use sqlx::PgPool;

/// Entry rows per INSERT at most: 3 parameters each, well under
/// PostgreSQL's 65,535 per statement. Power-of-two sizes (see
/// [`insert_chunks`]) keep the prepared statements per connection few.
const ENTRY_ROWS_PER_INSERT: usize = 1024;

/// The replicated evidence logs and cosignatures in the shared store
/// ([`super::PgStore::evidence_replicas`]). Clones share the store's pool.
#[derive(Clone)]
pub struct EvidenceReplicas {
    pool: PgPool,
}

impl std::fmt::Debug for EvidenceReplicas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EvidenceReplicas").finish_non_exhaustive()
    }
}

/// A sequence number or tree size as stored (PostgreSQL has no unsigned
/// BIGINT).
fn stored(what: &str, n: u64) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|_| StoreError::Malformed(format!("{what} {n} is too large to store")))
}

impl EvidenceReplicas {
    pub(super) fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Publishes the key `node`'s checkpoints verify with. The first key a
    /// node publishes stays: a different one later means the node's log was
    /// started anew under another key, or two nodes share an id, and either
    /// way trusting it silently would let a log be replaced, so it is
    /// refused ([`StoreError::Malformed`]). The same key again is fine.
    pub async fn publish_key(&self, node: &str, verifier_key: &str) -> Result<(), StoreError> {
        // A key, or a key name (the log's origin), another node already
        // uses would let one node's signature pass for another's, and a
        // witness's cosignature for a checkpoint of its own log.
        let name = verifier_key.split('+').next().unwrap_or_default();
        let shared: Option<String> = sqlx::query_scalar(
            "SELECT node_id FROM evidence_keys WHERE node_id <> $1 \
             AND (verifier_key = $2 OR split_part(verifier_key, '+', 1) = $3) LIMIT 1",
        )
        .bind(node)
        .bind(verifier_key)
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        if let Some(other) = shared {
            return Err(StoreError::Malformed(format!(
                "node {other} already signs with this evidence key or origin ({name}): give each node \
                 its own signing key and origin (leave [evidence] signing_key_file and origin out of a \
                 configuration several nodes share)"
            )));
        }
        sqlx::query(&format!(
            "INSERT INTO evidence_keys (node_id, verifier_key, published_at) \
             VALUES ($1, $2, {NOW_MILLIS}) ON CONFLICT (node_id) DO NOTHING"
        ))
        .bind(node)
        .bind(verifier_key)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        // A statement of its own: it sees the row, whichever node's insert won.
        let kept: Option<String> =
            sqlx::query_scalar("SELECT verifier_key FROM evidence_keys WHERE node_id = $1")
                .bind(node)
                .fetch_optional(&self.pool)
                .await
                .map_err(unavailable)?;
        match kept {
            Some(kept) if kept == verifier_key => Ok(()),
            Some(kept) => Err(StoreError::Malformed(format!(
                "node {node}'s evidence key in the store ({kept}) differs from this node's \
                 ({verifier_key}): the log's key changed, or two nodes share the id {node}"
            ))),
            None => Err(StoreError::Unavailable(format!(
                "node {node}'s evidence key is not in the store after publishing it"
            ))),
        }
    }

    /// Every node id the evidence tables name: with a key, or named by a
    /// checkpoint or cosignature (a verification must not miss a node whose
    /// key row was removed).
    pub async fn known_nodes(&self) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar(
            "SELECT node_id FROM evidence_keys \
             UNION SELECT node_id FROM evidence_checkpoints \
             UNION SELECT node_id FROM evidence_cosignatures \
             UNION SELECT cosigner FROM evidence_cosignatures ORDER BY 1",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)
    }

    /// Every node's published key: (node, verifier key), by node.
    pub async fn node_keys(&self) -> Result<Vec<(String, String)>, StoreError> {
        sqlx::query_as("SELECT node_id, verifier_key FROM evidence_keys ORDER BY node_id")
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)
    }

    /// The highest sequence number of `node`'s entries copied here (`None`:
    /// none yet): where its copying resumes.
    pub async fn replicated_through(&self, node: &str) -> Result<Option<u64>, StoreError> {
        let seq = max_seq(&self.pool, node).await?;
        seq.map(|s| unsigned("sequence number", s)).transpose()
    }

    /// Copies `node`'s entries (sequence number, bytes as its log stored
    /// them), in one transaction. Each (node, sequence number) is stored
    /// once: rows already here are skipped, so a batch retried after a lost
    /// commit, or overlapping one already copied, is harmless.
    pub async fn replicate(&self, node: &str, rows: &[(u64, Vec<u8>)]) -> Result<(), StoreError> {
        let seqs = rows
            .iter()
            .map(|(seq, _)| stored("sequence number", *seq))
            .collect::<Result<Vec<_>, _>>()?;
        if rows.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let mut numbered = rows.iter().zip(seqs);
        for chunk in insert_chunks(rows, ENTRY_ROWS_PER_INSERT) {
            let mut q = sqlx::QueryBuilder::<sqlx::Postgres>::new(
                "INSERT INTO evidence_entries (node_id, seq, bytes) ",
            );
            q.push_values(
                numbered.by_ref().take(chunk.len()),
                |mut b, ((_, bytes), seq)| {
                    b.push_bind(node).push_bind(seq).push_bind(bytes.as_slice());
                },
            );
            q.push(" ON CONFLICT (node_id, seq) DO NOTHING");
            q.build().execute(&mut *tx).await.map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)
    }

    /// Publishes `node`'s signed checkpoint at tree `size` (kept once per
    /// size), and tells the other nodes, which witness it.
    pub async fn publish_checkpoint(
        &self,
        node: &str,
        size: u64,
        note: &str,
    ) -> Result<(), StoreError> {
        let size = stored("tree size", size)?;
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let inserted = sqlx::query(&format!(
            "INSERT INTO evidence_checkpoints (node_id, size, note, published_at) \
             VALUES ($1, $2, $3, {NOW_MILLIS}) ON CONFLICT DO NOTHING"
        ))
        .bind(node)
        .bind(size)
        .bind(note)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?
        .rows_affected();
        // One already published is no news.
        if inserted > 0 {
            notify(&mut tx, Change::Checkpoint).await?;
        }
        tx.commit().await.map_err(unavailable)
    }

    /// Each node's newest (largest) checkpoint: (node, size, note), by
    /// node. What witnesses check next.
    pub async fn newest_checkpoints(&self) -> Result<Vec<(String, u64, String)>, StoreError> {
        // One index probe per node (not a scan of every checkpoint kept).
        let rows: Vec<(String, i64, String)> = sqlx::query_as(
            "SELECT k.node_id, c.size, c.note FROM evidence_keys k CROSS JOIN LATERAL \
             (SELECT size, note FROM evidence_checkpoints c WHERE c.node_id = k.node_id \
              ORDER BY size DESC LIMIT 1) c ORDER BY k.node_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.into_iter()
            .map(|(node, size, note)| Ok((node, unsigned("tree size", size)?, note)))
            .collect()
    }

    /// All of `node`'s checkpoints: (size, note), by size.
    pub async fn checkpoints(&self, node: &str) -> Result<Vec<(u64, String)>, StoreError> {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT size, note FROM evidence_checkpoints WHERE node_id = $1 ORDER BY size",
        )
        .bind(node)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.into_iter()
            .map(|(size, note)| Ok((unsigned("tree size", size)?, note)))
            .collect()
    }

    /// Up to `limit` of `node`'s entries numbered `from_seq` and after:
    /// (sequence number, bytes), by number.
    pub async fn entries(
        &self,
        node: &str,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let Ok(from_seq) = i64::try_from(from_seq) else {
            // Beyond any stored number.
            return Ok(Vec::new());
        };
        let rows = select_entries(&self.pool, node, from_seq, limit).await?;
        rows.into_iter()
            .map(|r| Ok((unsigned("sequence number", r.seq)?, r.bytes)))
            .collect()
    }

    /// Records `cosigner`'s cosignature `note` of `node`'s checkpoint at
    /// `size`, with the cosigner's `state` after checking it (what its next
    /// check resumes from). Kept once per (node, size, cosigner).
    pub async fn cosign(
        &self,
        node: &str,
        size: u64,
        cosigner: &str,
        note: &str,
        state: &[u8],
    ) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO evidence_cosignatures (node_id, size, cosigner, note, state, signed_at) \
             VALUES ($1, $2, $3, $4, $5, {NOW_MILLIS}) ON CONFLICT DO NOTHING"
        ))
        .bind(node)
        .bind(stored("tree size", size)?)
        .bind(cosigner)
        .bind(note)
        .bind(state)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    /// `cosigner`'s newest (largest) cosignature of `node`: (size, state),
    /// where its next check of `node` resumes.
    pub async fn latest_cosignature(
        &self,
        node: &str,
        cosigner: &str,
    ) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        let row: Option<(i64, Vec<u8>)> = sqlx::query_as(
            "SELECT size, state FROM evidence_cosignatures WHERE node_id = $1 AND cosigner = $2 \
             ORDER BY size DESC LIMIT 1",
        )
        .bind(node)
        .bind(cosigner)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        row.map(|(size, state)| Ok((unsigned("tree size", size)?, state)))
            .transpose()
    }

    /// Every cosignature of `node`'s checkpoints: (size, cosigner, note),
    /// by size then cosigner.
    pub async fn cosignatures(&self, node: &str) -> Result<Vec<(u64, String, String)>, StoreError> {
        let rows: Vec<(i64, String, String)> = sqlx::query_as(
            "SELECT size, cosigner, note FROM evidence_cosignatures WHERE node_id = $1 \
             ORDER BY size, cosigner",
        )
        .bind(node)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.into_iter()
            .map(|(size, cosigner, note)| Ok((unsigned("tree size", size)?, cosigner, note)))
            .collect()
    }

    /// `node`'s replicated log as a [`gatehouse_core::EvidenceStore`], so the log's own
    /// verification runs on the copy as on the original.
    pub fn replica_log(&self, node: &str) -> ReplicaLog {
        ReplicaLog::new(self.pool.clone(), node)
    }
}
