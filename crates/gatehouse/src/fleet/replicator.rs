//! This node's evidence log copied into the shared store: entries by
//! sequence number, then each checkpoint once every entry it covers is
//! there. Not on the data path: the node's write-ahead log is its local
//! file; the copy follows it in the background.

use gatehouse_core::EvidenceStore;
use gatehouse_store::EvidenceReplicas;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Entries copied per round trip at most.
pub(super) const BATCH: usize = 2_000;
/// How often the replicator looks again when nothing woke it.
const REPLICATE_POLL: Duration = Duration::from_secs(1);
/// The cursor file (under `data_dir/sinks`) that keeps sealed segments
/// from taking entries out of the live log before they are replicated.
pub const REPLICA_CURSOR: &str = "shared-store.next";

/// Copies this node's log (entries, then the checkpoints they complete)
/// into the shared store.
pub struct Replicator {
    replicas: EvidenceReplicas,
    node: String,
    local: Arc<dyn EvidenceStore>,
    cursor: PathBuf,
    /// The next entry to copy (`None` until read from the store).
    next: Option<u64>,
    /// The largest checkpoint published.
    published: u64,
}

impl Replicator {
    /// A replicator of `local` (the node's log, read-only) for `node`.
    pub fn new(
        replicas: EvidenceReplicas,
        node: String,
        local: Arc<dyn EvidenceStore>,
        cursor: PathBuf,
    ) -> Self {
        Self {
            replicas,
            node,
            local,
            cursor,
            next: None,
            published: 0,
        }
    }

    /// Copies what the store does not have yet: `Ok(true)` when caught up.
    pub async fn catch_up(&mut self) -> Result<bool, String> {
        let next = match self.next {
            Some(n) => n,
            None => {
                let through = self
                    .replicas
                    .replicated_through(&self.node)
                    .await
                    .map_err(|e| e.to_string())?;
                let n = through.map_or(0, |s| s + 1);
                self.next = Some(n);
                n
            }
        };
        let rows = self
            .local
            .entries_from(next, BATCH)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(first) = rows.first() {
            if first.seq as u64 != next {
                // Sealed into segments before they were copied: a log kept
                // in segments before the node used a shared store, or a
                // cursor saved for another store. Verification names the
                // gap in the copy.
                tracing::error!(
                    from = next, to = first.seq - 1,
                    "evidence entries are no longer in the live log and were never copied to the shared store"
                );
            }
            let batch: Vec<(u64, Vec<u8>)> =
                rows.into_iter().map(|r| (r.seq as u64, r.bytes)).collect();
            self.replicas
                .replicate(&self.node, &batch)
                .await
                .map_err(|e| e.to_string())?;
            let last = batch.last().map_or(next, |(seq, _)| seq + 1);
            self.next = Some(last);
            self.save_cursor(last).await;
            return Ok(batch.len() < BATCH && self.publish().await?);
        }
        self.publish().await
    }

    /// Publishes the newest checkpoint once every entry it covers is
    /// copied: `Ok(true)` when nothing is left to publish.
    async fn publish(&mut self) -> Result<bool, String> {
        let Some(cp) = self
            .local
            .latest_checkpoint()
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(true);
        };
        let copied = self.next.unwrap_or(0);
        if cp.size <= self.published {
            return Ok(true);
        }
        if cp.size > copied {
            return Ok(false);
        }
        self.replicas
            .publish_checkpoint(&self.node, cp.size, &cp.note)
            .await
            .map_err(|e| e.to_string())?;
        self.published = cp.size;
        Ok(true)
    }

    async fn save_cursor(&self, next: u64) {
        let path = self.cursor.clone();
        let saved = tokio::task::spawn_blocking(move || {
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, format!("{next}\n"))?;
            std::fs::rename(&tmp, &path)
        })
        .await;
        if !matches!(saved, Ok(Ok(()))) {
            tracing::warn!(cursor = %self.cursor.display(), "could not save the replica's position; sealing waits");
        }
    }

    /// Copies, woken by each commit of the local log, until the log is
    /// closed (then once more: its last entries and final checkpoint).
    pub async fn run(mut self, mut committed: watch::Receiver<u64>) {
        let mut backoff = REPLICATE_POLL;
        loop {
            let wait = match self.catch_up().await {
                Ok(true) => {
                    backoff = REPLICATE_POLL;
                    REPLICATE_POLL
                }
                Ok(false) => Duration::ZERO,
                Err(e) => {
                    tracing::error!(error = %e, "could not copy the evidence log to the shared store; retrying");
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    // The whole backoff: commits go on while the store is
                    // away, and must not bring the retry forward.
                    tokio::time::sleep(backoff).await;
                    if committed.has_changed().is_err() {
                        while let Ok(false) = self.catch_up().await {}
                        return;
                    }
                    continue;
                }
            };
            if wait.is_zero() {
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                r = committed.changed() => {
                    if r.is_err() {
                        // The log closed: one last pass, then done.
                        while let Ok(false) = self.catch_up().await {}
                        return;
                    }
                }
            }
        }
    }
}
