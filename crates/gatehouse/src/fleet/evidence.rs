//! Every node's evidence log in the shared store: each node copies its own
//! entries and signed checkpoints there (the replica), and witnesses the
//! others' checkpoints: it recomputes their tree from the replica and, when
//! the root is the one signed, cosigns the checkpoint with its own key. One
//! verification from any node then covers the whole fleet
//! (`gatehouse audit fleet`), and a node that rewrites its own log (even
//! with its own key) contradicts checkpoints the others cosigned.
//!
//! None of this is on the data path: a node's write-ahead log is its local
//! file; the replica follows it in the background.

use gatehouse_core::EvidenceStore;
use gatehouse_evidence::merkle::{leaf_hash, Frontier};
use gatehouse_evidence::{Hash, SigningKey, VerifierKey};
use gatehouse_store::EvidenceReplicas;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Entries copied per round trip at most.
const BATCH: usize = 2_000;
/// How often the replicator looks again when nothing woke it.
const REPLICATE_POLL: Duration = Duration::from_secs(1);
/// How often a node looks for others' checkpoints to witness.
const WITNESS_POLL: Duration = Duration::from_secs(2);
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
                // Sealed into segments before they were copied (the cursor
                // holds sealing back, so only after a lost cursor file):
                // verification names the gap in the replica.
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
                    backoff
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

/// What this node has witnessed of another node's log.
struct Witnessed {
    size: u64,
    frontier: Frontier,
    last_leaf: Hash,
    key: String,
}

/// Witnesses the other nodes' checkpoints until `stop`.
pub async fn witness(
    replicas: EvidenceReplicas,
    me: String,
    key: Arc<SigningKey>,
    mut changes: Option<watch::Receiver<u64>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut seen: HashMap<String, Witnessed> = HashMap::new();
    let mut complaints: HashMap<(String, u64), String> = HashMap::new();
    loop {
        if let Err(e) = witness_round(&replicas, &me, &key, &mut seen, &mut complaints).await {
            tracing::error!(error = %e, "could not witness the other nodes' checkpoints; retrying");
        }
        tokio::select! {
            _ = tokio::time::sleep(WITNESS_POLL) => {}
            r = super::notified(&mut changes) => {
                if r.is_err() {
                    changes = None;
                }
            }
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

async fn witness_round(
    replicas: &EvidenceReplicas,
    me: &str,
    key: &SigningKey,
    seen: &mut HashMap<String, Witnessed>,
    complaints: &mut HashMap<(String, u64), String>,
) -> Result<(), String> {
    let keys: HashMap<String, String> = replicas
        .node_keys()
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .collect();
    for (node, size, note) in replicas
        .newest_checkpoints()
        .await
        .map_err(|e| e.to_string())?
    {
        if node == me {
            continue;
        }
        match check_one(replicas, me, key, seen, &keys, &node, size, &note).await {
            Ok(()) => {}
            Err(why) => {
                // Said once per checkpoint: the next round meets it again.
                if complaints.get(&(node.clone(), size)) != Some(&why) {
                    tracing::error!(node = %node, size, "not cosigning a checkpoint: {why}");
                    complaints.insert((node.clone(), size), why);
                }
            }
        }
    }
    Ok(())
}

/// Checks node `node`'s checkpoint at `size` against its replica and
/// cosigns it. `Err` says why not (a finding, or the replica lagging).
#[allow(clippy::too_many_arguments)]
async fn check_one(
    replicas: &EvidenceReplicas,
    me: &str,
    key: &SigningKey,
    seen: &mut HashMap<String, Witnessed>,
    keys: &HashMap<String, String>,
    node: &str,
    size: u64,
    note: &str,
) -> Result<(), String> {
    let published = keys
        .get(node)
        .ok_or_else(|| "the node published no evidence key".to_string())?;
    let verifier = VerifierKey::parse(published).map_err(|e| format!("its published key: {e}"))?;
    let cp = verifier
        .open(note)
        .map_err(|e| format!("its signature does not verify with its published key: {e}"))?;
    if cp.size != size {
        return Err(format!("stored as size {size} but signs size {}", cp.size));
    }
    let w = match seen.remove(node) {
        Some(w) => w,
        None => resume(replicas, me, node, published).await?,
    };
    if w.key != *published {
        let why = format!(
            "the node's published key changed from {} to {published}",
            w.key
        );
        seen.insert(node.to_string(), w);
        return Err(why);
    }
    if size <= w.size {
        let older = size < w.size;
        seen.insert(node.to_string(), w);
        return if older {
            Err(
                "its newest checkpoint is older than one already cosigned (a rolled-back log?)"
                    .into(),
            )
        } else {
            Ok(())
        };
    }
    let mut next = w.clone_state();
    while next.size < size {
        let want = usize::try_from(size - next.size)
            .unwrap_or(BATCH)
            .min(BATCH);
        let rows = replicas
            .entries(node, next.size, want)
            .await
            .map_err(|e| e.to_string())?;
        if rows.is_empty() {
            seen.insert(node.to_string(), w);
            return Err(format!(
                "its replica holds only {} of the {size} entries it signs (still copying?)",
                next.size
            ));
        }
        for (seq, bytes) in rows {
            if seq != next.size {
                seen.insert(node.to_string(), w);
                return Err(format!(
                    "its replica has no entry {} (it goes on at {seq})",
                    next.size
                ));
            }
            let leaf = leaf_hash(&bytes);
            next.frontier.push(leaf);
            next.last_leaf = leaf;
            next.size += 1;
        }
    }
    if next.frontier.root() != cp.root {
        seen.insert(node.to_string(), w);
        return Err(format!(
            "its replica's first {size} entries do not give the root it signed: the copy or the log was changed"
        ));
    }
    let cosigned = key.sign(&cp);
    replicas
        .cosign(
            node,
            size,
            me,
            &cosigned,
            &next.frontier.state(&next.last_leaf),
        )
        .await
        .map_err(|e| e.to_string())?;
    seen.insert(node.to_string(), next);
    Ok(())
}

/// Where this node left off witnessing `node` (its newest cosignature's
/// state), or the start of the log.
async fn resume(
    replicas: &EvidenceReplicas,
    me: &str,
    node: &str,
    key: &str,
) -> Result<Witnessed, String> {
    let start = Witnessed {
        size: 0,
        frontier: Frontier::default(),
        last_leaf: [0; 32],
        key: key.to_string(),
    };
    let Some((size, state)) = replicas
        .latest_cosignature(node, me)
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(start);
    };
    match Frontier::from_state(&state) {
        Some((frontier, last_leaf)) if frontier.size() == size => Ok(Witnessed {
            size,
            frontier,
            last_leaf,
            key: key.to_string(),
        }),
        _ => {
            tracing::warn!(node, size, "the state kept with this node's cosignature is unreadable; witnessing from the start");
            Ok(start)
        }
    }
}

impl Witnessed {
    fn clone_state(&self) -> Witnessed {
        Witnessed {
            size: self.size,
            frontier: self.frontier.clone(),
            last_leaf: self.last_leaf,
            key: self.key.clone(),
        }
    }
}
