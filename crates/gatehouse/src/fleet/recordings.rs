//! Session recordings every node can replay: this node's finished ones
//! copied to the shared store.

use super::REPLICA_GRACE;
use gatehouse_core::Store;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How often finished recordings are looked for to copy to the store.
const RECORDING_POLL: Duration = Duration::from_secs(2);
/// A recording larger than this stays on its node (it is read whole to be
/// copied, and a store value has its limits).
const SHARED_RECORDING_MAX: u64 = 256 * 1024 * 1024;
/// A recording that could not be copied is tried again after this long.
const RECORDING_RETRY: Duration = Duration::from_secs(60);

/// Copies this node's finished recordings (`dir`, files without `.part`)
/// to the shared store so any node can replay them, until shutdown. The
/// session's record holds each one's SHA-256, which readers check.
pub async fn share_recordings(
    store: Arc<dyn Store>,
    dir: PathBuf,
    mut stop: watch::Receiver<bool>,
) {
    let mut shared = Shared::default();
    loop {
        if let Err(e) = shared.copy_new(store.as_ref(), &dir).await {
            tracing::error!(error = %e, "could not copy recordings to the shared store; retrying");
        }
        let stopping = tokio::select! {
            _ = tokio::time::sleep(RECORDING_POLL) => false,
            _ = stop.wait_for(|s| *s) => true,
        };
        if stopping {
            // What finished by now goes too, if the store takes it soon;
            // the rest at the next start.
            let _ =
                tokio::time::timeout(REPLICA_GRACE, shared.copy_new(store.as_ref(), &dir)).await;
            return;
        }
    }
}

/// What [`share_recordings`] has done.
#[derive(Default)]
struct Shared {
    /// Copied (read from the store at first).
    kept: Option<std::collections::HashSet<String>>,
    /// Not copied: too large (for good), or failed (until the retry time).
    left: HashMap<String, Option<tokio::time::Instant>>,
}

impl Shared {
    async fn copy_new(&mut self, store: &dyn Store, dir: &std::path::Path) -> Result<(), String> {
        let kept = match &mut self.kept {
            Some(k) => k,
            None => self.kept.insert(
                store
                    .kept_recordings()
                    .await
                    .map_err(|e| e.to_string())?
                    .into_iter()
                    .collect(),
            ),
        };
        let mut entries = match tokio::fs::read_dir(dir).await {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(format!("{}: {e}", dir.display())),
        };
        while let Some(entry) = entries.next_entry().await.map_err(|e| e.to_string())? {
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if name.ends_with(".part") || name.starts_with('.') || kept.contains(&name) {
                continue;
            }
            match self.left.get(&name) {
                Some(None) => continue,
                Some(Some(retry)) if tokio::time::Instant::now() < *retry => continue,
                _ => {}
            }
            let path = entry.path();
            let size = entry.metadata().await.map(|m| m.len()).unwrap_or(0);
            if size > SHARED_RECORDING_MAX {
                tracing::warn!(recording = %name, bytes = size, "a recording too large to copy to the shared store stays on this node; replay it through this node");
                self.left.insert(name, None);
                continue;
            }
            let copied = async {
                let bytes = tokio::fs::read(&path)
                    .await
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                let sha256 = {
                    use sha2::Digest;
                    hex::encode(sha2::Sha256::digest(&bytes))
                };
                store
                    .keep_recording(&name, &sha256, &bytes)
                    .await
                    .map_err(|e| e.to_string())
            }
            .await;
            match copied {
                Ok(()) => {
                    self.left.remove(&name);
                    kept.insert(name);
                }
                Err(e) => {
                    tracing::error!(recording = %name, error = %e, "could not copy a recording to the shared store; trying again in a minute");
                    self.left
                        .insert(name, Some(tokio::time::Instant::now() + RECORDING_RETRY));
                }
            }
        }
        Ok(())
    }
}
