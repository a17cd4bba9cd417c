//! Gateway nodes sharing one store: who they are and whether they are alive.

use crate::Timestamp;
use serde::{Deserialize, Serialize};

/// A gateway node as the shared store knows it (its last heartbeat).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// Its stable id (`[server] node_id`, or generated into its data directory).
    pub id: String,
    /// Where its REST API listens, as it configured it.
    pub api_address: String,
    /// The gateway version it runs.
    pub version: String,
    /// When it started (this run).
    pub started_at: Timestamp,
    /// Its last heartbeat.
    pub heartbeat_at: Timestamp,
    /// When it stopped cleanly; `None` while running (or lost).
    pub stopped_at: Option<Timestamp>,
    /// When another node found it silent and ended its open sessions, and
    /// which node did.
    pub lost: Option<(Timestamp, String)>,
}

/// A node's open sessions another node ended because it fell silent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LostNode {
    /// The silent node.
    pub id: String,
    /// Its last heartbeat.
    pub heartbeat_at: Timestamp,
    /// How many of its sessions were still open and are now ended.
    pub sessions_ended: u64,
}
