//! Gatehouse core: the protocol-neutral domain of the gateway.
//!
//! This crate knows identities, sessions, statement records and service-token
//! records, and the [`Store`] trait that persists them. It knows no wire
//! protocol, no socket and no storage engine: adapters and stores depend on it,
//! never the other way round.

mod approval;
mod approval_desk;
mod approval_index;
mod audit;
mod column_sampling;
mod error;
mod identity;
mod node;
mod recorder;
mod sensitive_columns;
mod session;
mod store;
mod time;
mod token;

pub use approval::{
    statement_fingerprint, ApprovalId, ApprovalMode, ApprovalRequest, ApprovalRoute, ApprovalState,
    ApprovalVote, VoteRefused,
};
pub use approval_desk::{ActionToApprove, ApprovalDesk, ApprovalError, ApprovalNotice, Consulted};
pub use audit::{
    ActionDecided, AuditError, AuditEvent, AuditTrail, AuthAttempt, EventKind, EvidenceStore,
    LogRow, PendingAppend, StoredCheckpoint, APPROVAL_TEXT_EXCERPT,
};
pub use column_sampling::{ColumnSampler, SampledColumn, SamplingProgress};
pub use error::StoreError;
pub use identity::{Actor, Delegation, Identity, IdentitySource, OidcSource};
pub use node::{LostNode, NodeRecord};
pub use recorder::{RecorderClosed, RecorderStop, SessionRecorder, StartError};
pub use sensitive_columns::{FoundBy, SensitiveColumn, SensitiveColumns, SensitiveColumnsError};
pub use session::{
    ActionOutcome, ActionRecord, Decided, DecidedIn, DecisionRecord, HttpExchange, MaskingSummary,
    SessionDetail, SessionEnd, SessionEndFields, SessionEndReason, SessionFilter, SessionId,
    SessionOutcome, SessionStart, SessionSummary, StreamRecord,
};
pub use store::{ApprovalChanges, Store};
pub use time::Timestamp;

/// The wire protocols the gateway speaks; the name is what sessions, events
/// and records carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// PostgreSQL's frontend/backend protocol.
    Postgres,
    /// HTTP requests to a REST API.
    Http,
    /// MCP (JSON-RPC over Streamable HTTP).
    Mcp,
    /// The Kubernetes API (HTTP requests to an API server).
    Kubernetes,
    /// SSH: shells, commands, file transfer and forwarding on a host.
    Ssh,
    /// MySQL's client/server protocol (MySQL and MariaDB).
    Mysql,
}

impl Protocol {
    /// `postgres`, `http`, `mcp`, `kubernetes`, `ssh` or `mysql`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Postgres => "postgres",
            Protocol::Http => "http",
            Protocol::Mcp => "mcp",
            Protocol::Kubernetes => "kubernetes",
            Protocol::Ssh => "ssh",
            Protocol::Mysql => "mysql",
        }
    }
}
pub use token::{TokenId, TokenRecord};
