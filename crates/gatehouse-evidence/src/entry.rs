//! Log entries: one event, numbered per node and linked to the entry before
//! it, in canonical JSON.

use crate::canonical;
use crate::merkle::{leaf_hash, Hash};
use crate::EvidenceError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// What happened. One kind per security-relevant event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A caller proved its identity.
    AuthSuccess,
    /// A caller failed to.
    AuthFailure,
    /// A session began.
    SessionStart,
    /// A session ended.
    SessionEnd,
    /// A statement with its decision and outcome.
    Statement,
    /// An approval was requested.
    ApprovalRequested,
    /// An approval was granted.
    ApprovalApproved,
    /// An approval was denied.
    ApprovalDenied,
    /// An approval expired.
    ApprovalExpired,
    /// A service token was created.
    TokenCreated,
    /// A service token was revoked.
    TokenRevoked,
    /// Policies were loaded or reloaded.
    PolicyLoaded,
    /// The configuration was loaded.
    ConfigLoaded,
    /// The gateway started.
    GatewayStarted,
    /// The gateway stopped.
    GatewayStopped,
    /// An access review was signed off.
    AccessReview,
}

impl EventKind {
    /// The name used in entries.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthSuccess => "auth_success",
            Self::AuthFailure => "auth_failure",
            Self::SessionStart => "session_start",
            Self::SessionEnd => "session_end",
            Self::Statement => "statement",
            Self::ApprovalRequested => "approval_requested",
            Self::ApprovalApproved => "approval_approved",
            Self::ApprovalDenied => "approval_denied",
            Self::ApprovalExpired => "approval_expired",
            Self::TokenCreated => "token_created",
            Self::TokenRevoked => "token_revoked",
            Self::PolicyLoaded => "policy_loaded",
            Self::ConfigLoaded => "config_loaded",
            Self::GatewayStarted => "gateway_started",
            Self::GatewayStopped => "gateway_stopped",
            Self::AccessReview => "access_review",
        }
    }
}

/// An event to append.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// When (RFC 3339, UTC).
    pub time: String,
    /// The details (a JSON object; integers only, no secrets).
    pub payload: Value,
}

/// A decoded entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// Position in this node's log, from 0.
    pub seq: u64,
    /// The node that wrote it.
    pub node: String,
    /// The leaf hash of the entry before it (zeros for the first).
    pub prev: Hash,
    /// The event.
    pub event: Event,
}

impl Entry {
    /// The canonical bytes: what the leaf hash covers.
    pub fn encode(&self) -> Result<Vec<u8>, EvidenceError> {
        canonical::to_vec(&json!({
            "seq": self.seq,
            "node": self.node,
            "prev": hex::encode(self.prev),
            "kind": self.event.kind.as_str(),
            "time": self.event.time,
            "payload": self.event.payload,
        }))
    }

    /// Decodes stored bytes, which must be exactly the canonical encoding.
    pub fn decode(bytes: &[u8]) -> Result<Self, EvidenceError> {
        let bad = |why: String| EvidenceError::Entry(why);
        let v: Value = serde_json::from_slice(bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
        let field = |k: &str| v.get(k).ok_or_else(|| bad(format!("no {k:?}")));
        let seq = field("seq")?
            .as_u64()
            .ok_or_else(|| bad("seq is not a number".into()))?;
        let node = field("node")?
            .as_str()
            .ok_or_else(|| bad("node is not a string".into()))?
            .to_string();
        let prev = field("prev")?
            .as_str()
            .and_then(|p| hex::decode(p).ok())
            .and_then(|p| Hash::try_from(p).ok())
            .ok_or_else(|| bad("prev is not a hash".into()))?;
        let kind: EventKind = serde_json::from_value(field("kind")?.clone())
            .map_err(|_| bad("unknown kind".into()))?;
        let time = field("time")?
            .as_str()
            .ok_or_else(|| bad("time is not a string".into()))?
            .to_string();
        let payload = field("payload")?.clone();
        if v.as_object().map_or(0, |m| m.len()) != 6 {
            return Err(bad("unexpected fields".into()));
        }
        let entry = Entry {
            seq,
            node,
            prev,
            event: Event {
                kind,
                time,
                payload,
            },
        };
        if entry.encode()? != bytes {
            return Err(bad("not in canonical form".into()));
        }
        Ok(entry)
    }

    /// This entry's leaf hash.
    pub fn leaf(bytes: &[u8]) -> Hash {
        leaf_hash(bytes)
    }
}
