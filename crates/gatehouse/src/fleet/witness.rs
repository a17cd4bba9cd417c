//! Witnessing the other nodes' logs: each node recomputes the others'
//! Merkle trees from their copies in the shared store and, when the root
//! is the one signed, cosigns the checkpoint with its own key. A node that
//! rewrites its own log (even with its own key) then meets witnesses that
//! remember the tree they cosigned.

use gatehouse_evidence::merkle::{leaf_hash, Frontier};
use gatehouse_evidence::{Hash, SigningKey, VerifierKey};
use gatehouse_store::EvidenceReplicas;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Entries read per round trip at most.
const BATCH: usize = super::replicator::BATCH;
/// How often a node looks for others' checkpoints to witness.
const WITNESS_POLL: Duration = Duration::from_secs(2);

/// What this node has witnessed of another node's log.
#[derive(Clone)]
struct Witnessed {
    size: u64,
    frontier: Frontier,
    last_leaf: Hash,
    /// The node's key it was witnessed with.
    key: String,
}

/// Why a checkpoint was not cosigned.
enum NotCosigned {
    /// Not yet: the copy is still catching up (tried again next round).
    Lagging(String),
    /// Something is wrong (said once; tried again only for a newer
    /// checkpoint).
    Finding(String),
}

/// The witness's memory of what it cosigned, kept in its own data
/// directory (`witnessed.json`): a restart resumes from it, not from the
/// store, which a node being witnessed could edit (the state kept with a
/// cosignature in the store is used only when this file has nothing).
#[derive(serde::Serialize, serde::Deserialize, Default)]
struct Memory {
    nodes: HashMap<String, Remembered>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Remembered {
    size: u64,
    state: String,
    key: String,
}

/// File name of the witness's memory inside the data directory.
pub const MEMORY_FILE: &str = "witnessed.json";

/// Witnesses the other nodes' checkpoints until `stop`.
pub async fn witness(
    replicas: EvidenceReplicas,
    me: String,
    key: Arc<SigningKey>,
    memory: PathBuf,
    mut changes: Option<watch::Receiver<u64>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut w = Witness {
        replicas,
        me,
        key,
        seen: load(&memory),
        memory,
        complaints: HashMap::new(),
    };
    loop {
        if let Err(e) = w.round().await {
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

/// The witness's memory; empty (with an error logged) when unreadable.
fn load(path: &std::path::Path) -> HashMap<String, Witnessed> {
    let memory: Memory = match std::fs::read_to_string(path) {
        Ok(text) => match serde_json::from_str(&text) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(file = %path.display(), error = %e, "the witness's memory is unreadable; witnessing starts over from the store");
                Memory::default()
            }
        },
        Err(_) => Memory::default(),
    };
    memory
        .nodes
        .into_iter()
        .filter_map(|(node, r)| {
            let state = hex::decode(&r.state).ok()?;
            let (frontier, last_leaf) = Frontier::from_state(&state)?;
            (frontier.size() == r.size).then_some((
                node,
                Witnessed {
                    size: r.size,
                    frontier,
                    last_leaf,
                    key: r.key,
                },
            ))
        })
        .collect()
}

struct Witness {
    replicas: EvidenceReplicas,
    me: String,
    key: Arc<SigningKey>,
    memory: PathBuf,
    seen: HashMap<String, Witnessed>,
    /// The last finding per node and the checkpoint it was about.
    complaints: HashMap<String, (u64, String)>,
}

impl Witness {
    async fn round(&mut self) -> Result<(), String> {
        let keys: HashMap<String, String> = self
            .replicas
            .node_keys()
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .collect();
        for (node, size, note) in self
            .replicas
            .newest_checkpoints()
            .await
            .map_err(|e| e.to_string())?
        {
            if node == self.me {
                continue;
            }
            if self
                .complaints
                .get(&node)
                .is_some_and(|(at, _)| *at == size)
            {
                continue;
            }
            match self.check_one(&keys, &node, size, &note).await {
                Ok(()) => {
                    self.complaints.remove(&node);
                }
                Err(NotCosigned::Lagging(why)) => {
                    tracing::debug!(node = %node, size, "not cosigning yet: {why}");
                }
                Err(NotCosigned::Finding(why)) => {
                    tracing::error!(node = %node, size, "not cosigning a checkpoint: {why}");
                    self.complaints.insert(node, (size, why));
                }
            }
        }
        Ok(())
    }

    /// Checks node `node`'s checkpoint at `size` against its copy and
    /// cosigns it.
    async fn check_one(
        &mut self,
        keys: &HashMap<String, String>,
        node: &str,
        size: u64,
        note: &str,
    ) -> Result<(), NotCosigned> {
        use NotCosigned::{Finding, Lagging};
        let published = keys
            .get(node)
            .ok_or_else(|| Finding("the node published no evidence key".into()))?;
        let verifier = VerifierKey::parse(published)
            .map_err(|e| Finding(format!("its published key: {e}")))?;
        let cp = verifier.open(note).map_err(|e| {
            Finding(format!(
                "its signature does not verify with its published key: {e}"
            ))
        })?;
        if cp.size != size {
            return Err(Finding(format!(
                "stored as size {size} but signs size {}",
                cp.size
            )));
        }
        let w = match self.seen.get(node) {
            Some(w) => w.clone(),
            None => self.resume(node, published).await?,
        };
        if w.key != *published {
            return Err(Finding(format!(
                "the node's published key changed from {} to {published}",
                w.key
            )));
        }
        if size < w.size {
            return Err(Finding(format!(
                "its newest checkpoint ({size} entries) is older than one already cosigned ({}): a rolled-back log?",
                w.size
            )));
        }
        if size == w.size {
            return if w.frontier.root() == cp.root {
                Ok(())
            } else {
                Err(Finding(format!(
                    "it signs a different tree of {size} entries than the one already cosigned: a forked log"
                )))
            };
        }
        let mut next = w;
        while next.size < size {
            let want = usize::try_from(size - next.size)
                .unwrap_or(BATCH)
                .min(BATCH);
            let rows = self
                .replicas
                .entries(node, next.size, want)
                .await
                .map_err(|e| Lagging(e.to_string()))?;
            if rows.is_empty() {
                return Err(Lagging(format!(
                    "its copy holds only {} of the {size} entries it signs",
                    next.size
                )));
            }
            for (seq, bytes) in rows {
                if seq != next.size {
                    return Err(Finding(format!(
                        "its copy has no entry {} (it goes on at {seq})",
                        next.size
                    )));
                }
                let leaf = leaf_hash(&bytes);
                next.frontier.push(leaf);
                next.last_leaf = leaf;
                next.size += 1;
            }
        }
        if next.frontier.root() != cp.root {
            return Err(Finding(format!(
                "its copy's first {size} entries do not give the root it signed: the copy or the log was changed"
            )));
        }
        let cosigned = self.key.sign(&cp);
        let state = next.frontier.state(&next.last_leaf);
        self.replicas
            .cosign(node, size, &self.me, &cosigned, &state)
            .await
            .map_err(|e| Lagging(e.to_string()))?;
        self.seen.insert(node.to_string(), next);
        self.remember().await;
        Ok(())
    }

    /// Where this node left off witnessing `node` when its memory has
    /// nothing: its newest cosignature in the store, if that cosignature
    /// verifies with this node's key and its state gives the root it
    /// cosigned; else the start of the log.
    async fn resume(&self, node: &str, key: &str) -> Result<Witnessed, NotCosigned> {
        let start = Witnessed {
            size: 0,
            frontier: Frontier::default(),
            last_leaf: [0; 32],
            key: key.to_string(),
        };
        let Some((size, state)) = self
            .replicas
            .latest_cosignature(node, &self.me)
            .await
            .map_err(|e| NotCosigned::Lagging(e.to_string()))?
        else {
            return Ok(start);
        };
        let mine = self
            .replicas
            .cosignatures(node)
            .await
            .map_err(|e| NotCosigned::Lagging(e.to_string()))?
            .into_iter()
            .find(|(s, by, _)| *s == size && *by == self.me)
            .and_then(|(_, _, note)| self.key.verifier().witnessed(&note).ok());
        match (Frontier::from_state(&state), mine) {
            (Some((frontier, last_leaf)), Some(cp))
                if frontier.size() == size && cp.size == size && frontier.root() == cp.root =>
            {
                Ok(Witnessed {
                    size,
                    frontier,
                    last_leaf,
                    key: key.to_string(),
                })
            }
            _ => {
                tracing::warn!(node, size, "this node's cosignature state in the store does not match what it cosigned; witnessing from the start");
                Ok(start)
            }
        }
    }

    /// Writes the memory (atomically); a failure is logged (the store's
    /// state is the fallback).
    async fn remember(&self) {
        let memory = Memory {
            nodes: self
                .seen
                .iter()
                .map(|(node, w)| {
                    (
                        node.clone(),
                        Remembered {
                            size: w.size,
                            state: hex::encode(w.frontier.state(&w.last_leaf)),
                            key: w.key.clone(),
                        },
                    )
                })
                .collect(),
        };
        let path = self.memory.clone();
        let written = tokio::task::spawn_blocking(move || {
            let text = serde_json::to_vec(&memory).map_err(std::io::Error::other)?;
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, text)?;
            std::fs::rename(&tmp, &path)
        })
        .await;
        if !matches!(written, Ok(Ok(()))) {
            tracing::warn!(file = %self.memory.display(), "could not keep the witness's memory");
        }
    }
}
