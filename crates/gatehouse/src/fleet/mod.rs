//! This node among others: the store it opens (embedded or shared), its
//! heartbeat in the store's node registry, the sessions of nodes that fell
//! silent, and the approval changes other nodes make.

pub mod evidence;

use crate::config::{GatewayConfig, StoreSpec, HEARTBEAT};
use anyhow::{Context, Result};
use gatehouse_core::{ApprovalDesk, NodeRecord, Store, Timestamp};
use gatehouse_store::{PgStore, SqliteStore};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// File name of the embedded store inside the data directory.
pub const STORE_FILE: &str = "gatehouse.db";

/// Approval changes are read again this far back on every poll: writes
/// that took their time on the store's clock before committing.
const CHANGE_MARGIN: Duration = Duration::from_secs(5);
/// How often a node with a shared store polls it for approval changes
/// (notifications wake it sooner; polling covers lost ones).
const CHANGE_POLL: Duration = Duration::from_millis(500);
/// Changes read per poll at most.
const CHANGE_PAGE: u32 = 10_000;

/// The store this node opened.
#[derive(Clone)]
pub enum OpenStore {
    /// Its own SQLite file.
    Embedded(SqliteStore),
    /// A PostgreSQL store shared with other nodes.
    Shared(PgStore, Duration),
}

impl OpenStore {
    /// Opens the configured store.
    pub async fn open(config: &GatewayConfig) -> Result<Self> {
        let node = &config.node.id;
        match &config.store {
            StoreSpec::Embedded => {
                let path = config.data_dir.join(STORE_FILE);
                let store = SqliteStore::open_for_node(&path, node)
                    .await
                    .with_context(|| format!("opening the store {}", path.display()))?;
                Ok(Self::Embedded(store))
            }
            StoreSpec::Shared(shared) => {
                let store = PgStore::connect(shared.settings(node))
                    .await
                    .with_context(|| {
                        format!(
                            "{}: store.url: opening the shared store {}",
                            config.file.display(),
                            shared.url
                        )
                    })?;
                Ok(Self::Shared(store, shared.lost_after))
            }
        }
    }

    /// The store, for the core.
    pub fn dyn_store(&self) -> Arc<dyn Store> {
        match self {
            Self::Embedded(s) => Arc::new(s.clone()),
            Self::Shared(s, _) => Arc::new(s.clone()),
        }
    }

    /// Closes it, waiting for in-flight writes.
    pub async fn close(&self) {
        match self {
            Self::Embedded(s) => s.close().await,
            Self::Shared(s, _) => s.close().await,
        }
    }
}

/// This node's registry entry as of now.
fn beat(config: &GatewayConfig, started_at: Timestamp) -> NodeRecord {
    NodeRecord {
        id: config.node.id.clone(),
        api_address: config.api_listen.to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        started_at,
        heartbeat_at: Timestamp::now(),
        stopped_at: None,
        lost: None,
    }
}

/// Registers this node in the store (at start).
pub async fn register(store: &dyn Store, config: &GatewayConfig) -> Result<Timestamp> {
    let started_at = Timestamp::now();
    store
        .node_heartbeat(&beat(config, started_at))
        .await
        .context("registering this node in the store")?;
    Ok(started_at)
}

/// Heartbeats until shutdown; with a shared store, also ends the open
/// sessions of nodes silent longer than `lost_after`.
pub async fn heartbeat(
    store: Arc<dyn Store>,
    config: GatewayConfig,
    started_at: Timestamp,
    lost_after: Option<Duration>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        if let Err(e) = store.node_heartbeat(&beat(&config, started_at)).await {
            tracing::error!(error = %e, "could not heartbeat to the store; retrying");
            continue;
        }
        let Some(lost_after) = lost_after else {
            continue;
        };
        let now = Timestamp::now();
        let silent_before = Timestamp::from_unix_millis(
            now.unix_millis() - i64::try_from(lost_after.as_millis()).unwrap_or(i64::MAX),
        );
        match store.end_sessions_of_silent_nodes(silent_before, now).await {
            Ok(lost) => {
                for n in lost {
                    tracing::warn!(
                        node = %n.id, last_heartbeat = %n.heartbeat_at, sessions_ended = n.sessions_ended,
                        "a node stopped heartbeating; its open sessions are marked ended"
                    );
                }
            }
            Err(e) => tracing::error!(error = %e, "could not check for silent nodes; retrying"),
        }
    }
}

/// Takes in the approval changes other nodes store, until shutdown: on
/// each store notification, and every [`CHANGE_POLL`] in case one was lost.
pub async fn follow_approvals(
    store: Arc<dyn Store>,
    desk: Arc<ApprovalDesk>,
    mut stop: watch::Receiver<bool>,
) {
    let Some(changes) = store.changes() else {
        return;
    };
    let mut changes = Some(changes);
    // The desk indexed the live requests when it opened; from the store's
    // clock then (less a minute, read again harmlessly) on, changes follow.
    let mut since = None;
    let mut tick = tokio::time::interval(CHANGE_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let from = match since {
            Some(t) => t,
            None => match store
                .approvals_changed_since(Some(Timestamp::from_unix_millis(i64::MAX)), 1)
                .await
            {
                Ok((now, _)) => Timestamp::from_unix_millis(now.unix_millis() - 60_000),
                Err(e) => {
                    tracing::error!(error = %e, "could not read the store's clock; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(CHANGE_POLL) => continue,
                        _ = stop.wait_for(|s| *s) => return,
                    }
                }
            },
        };
        match store.approvals_changed_since(Some(from), CHANGE_PAGE).await {
            Ok((now, changed)) => {
                if changed.len() >= CHANGE_PAGE as usize {
                    tracing::warn!(
                        changes = changed.len(),
                        "more approval changes in a few seconds than are read at once; later ones are taken in on the next notice"
                    );
                }
                for r in &changed {
                    desk.apply_remote(r);
                }
                since = Some(Timestamp::from_unix_millis(
                    now.unix_millis() - CHANGE_MARGIN.as_millis() as i64,
                ));
            }
            Err(e) => {
                tracing::error!(error = %e, "could not read approval changes from the store; retrying")
            }
        }
        tokio::select! {
            _ = tick.tick() => {}
            r = notified(&mut changes) => {
                if r.is_err() {
                    // The store's listener ended: polling alone goes on.
                    changes = None;
                }
            }
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// The next store notification; never, once notifications ended.
pub(crate) async fn notified(
    changes: &mut Option<watch::Receiver<u64>>,
) -> Result<(), watch::error::RecvError> {
    match changes {
        Some(c) => c.changed().await,
        None => std::future::pending().await,
    }
}

/// The tasks that keep this node's evidence in the shared store.
pub struct FleetEvidence {
    /// Copies the log; ends once the log is closed and copied.
    pub replicator: JoinHandle<()>,
    /// Cosigns the other nodes' checkpoints; ends at shutdown.
    pub witness: JoinHandle<()>,
}

/// How long stopping waits for the last entries to reach the shared store;
/// the rest is copied at the next start.
pub const REPLICA_GRACE: Duration = Duration::from_secs(5);

/// Publishes this node's evidence key in the shared store (refusing to
/// start when the store holds another key for this node id) and starts
/// copying the log there and witnessing the other nodes'.
pub async fn start_evidence(
    pg: &PgStore,
    config: &GatewayConfig,
    log: &crate::evidence::OpenLog,
    cursor: PathBuf,
    stop: watch::Receiver<bool>,
) -> Result<FleetEvidence> {
    let node = config.node.id.clone();
    let key = crate::evidence::signing_key(&config.evidence, &config.data_dir)?;
    let replicas = pg.evidence_replicas();
    replicas
        .publish_key(&node, &key.verifier().to_string())
        .await
        .with_context(|| {
            format!(
                "publishing node {node}'s evidence key in the shared store: if another node uses the id {node}, give each node its own [server] node_id"
            )
        })?;
    if let Some(dir) = cursor.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let path = crate::evidence::log_path(&config.data_dir);
    let local: Arc<dyn gatehouse_core::EvidenceStore> = Arc::new(
        gatehouse_store::SqliteEvidenceStore::open_read_only(&path)
            .await
            .with_context(|| {
                format!("opening {} to copy it to the shared store", path.display())
            })?,
    );
    let replicator = evidence::Replicator::new(replicas.clone(), node.clone(), local, cursor);
    let replicator = tokio::spawn(replicator.run(log.log.committed()));
    let witness = tokio::spawn(evidence::witness(
        replicas,
        node,
        Arc::new(key),
        pg.changes(),
        stop,
    ));
    Ok(FleetEvidence {
        replicator,
        witness,
    })
}
