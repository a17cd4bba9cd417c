use crate::{
    ActionRecord, ApprovalId, ApprovalRequest, ApprovalState, LostNode, NodeRecord,
    SensitiveColumn, SessionDetail, SessionEnd, SessionFilter, SessionId, SessionStart,
    SessionSummary, StoreError, Timestamp, TokenId, TokenRecord,
};
use async_trait::async_trait;

/// A page of approval changes ([`Store::approvals_changed_since`]).
#[derive(Debug)]
pub struct ApprovalChanges {
    /// The store's clock, read before the page: the next call passes it
    /// back (less a margin for writes still committing).
    pub now: Timestamp,
    /// The requests that changed, each with when, oldest first.
    pub changed: Vec<(Timestamp, ApprovalRequest)>,
    /// The page was full (counting rows that could not be read): the last
    /// row's time, where the next call goes on from instead.
    pub more_from: Option<Timestamp>,
}

/// Persistence for the gateway: the embedded SQLite store of one node, or
/// a PostgreSQL store several nodes share. Races between nodes are decided
/// in the store by conditional updates, never by a read then a write.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Stores a new token record.
    async fn insert_token(&self, token: &TokenRecord) -> Result<(), StoreError>;
    /// Finds a token by public id.
    async fn find_token(&self, id: &TokenId) -> Result<Option<TokenRecord>, StoreError>;
    /// All tokens, newest first.
    async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError>;
    /// Marks a token revoked; returns the updated record, `NotFound` if absent.
    async fn revoke_token(&self, id: &TokenId, at: Timestamp) -> Result<TokenRecord, StoreError>;

    /// Records the start of a session.
    async fn record_session_start(&self, start: &SessionStart) -> Result<(), StoreError>;
    /// Records a batch of events in one transaction (group commit).
    async fn record_batch(
        &self,
        statements: &[ActionRecord],
        ends: &[SessionEnd],
    ) -> Result<(), StoreError>;
    /// Lists sessions, newest first.
    async fn list_sessions(
        &self,
        filter: &SessionFilter,
    ) -> Result<Vec<SessionSummary>, StoreError>;
    /// One session with its statements.
    async fn session(&self, id: SessionId) -> Result<Option<SessionDetail>, StoreError>;

    /// Stores a new approval request (or replaces one unconditionally).
    async fn save_approval(&self, request: &ApprovalRequest) -> Result<(), StoreError>;
    /// Replaces request `request.id` only if the stored one is still in
    /// state `was` with `was_votes` votes: `false` (nothing written) when
    /// another node changed it meanwhile.
    async fn update_approval(
        &self,
        request: &ApprovalRequest,
        was: ApprovalState,
        was_votes: usize,
    ) -> Result<bool, StoreError>;
    /// Marks approval `id` used at `at` if it is approved and not used:
    /// `true` when this call used it, `false` when it was not approved
    /// (used elsewhere, expired). One conditional update: across every node
    /// sharing the store, an approval is used at most once.
    async fn use_approval(&self, id: &ApprovalId, at: Timestamp) -> Result<bool, StoreError>;
    /// Approval requests stored or changed at or after `since` by the
    /// store's clock (all when `None`), oldest change first, at most
    /// `limit` rows. A row that cannot be read is left out (and logged),
    /// so one bad row cannot stop every node following the others' changes.
    async fn approvals_changed_since(
        &self,
        since: Option<Timestamp>,
        limit: u32,
    ) -> Result<ApprovalChanges, StoreError>;
    /// One approval request.
    async fn approval(&self, id: &ApprovalId) -> Result<Option<ApprovalRequest>, StoreError>;
    /// Approval requests in `state`, oldest first (by creation, then id),
    /// those after `after` (a creation time and id), at most `limit`: a
    /// page at a time through every one of them.
    async fn list_approvals_after(
        &self,
        state: ApprovalState,
        after: Option<&(Timestamp, ApprovalId)>,
        limit: u32,
    ) -> Result<Vec<ApprovalRequest>, StoreError>;
    /// Approval requests, newest first; only those in `state` if given.
    async fn list_approvals(
        &self,
        state: Option<ApprovalState>,
        limit: u32,
    ) -> Result<Vec<ApprovalRequest>, StoreError>;

    /// Stores a found sensitive column (nothing when the same column of the
    /// same connection is stored and not removed).
    async fn save_sensitive_column(&self, column: &SensitiveColumn) -> Result<(), StoreError>;
    /// The sensitive columns found and not removed.
    async fn list_sensitive_columns(&self) -> Result<Vec<SensitiveColumn>, StoreError>;
    /// Marks sensitive column `id` removed.
    async fn remove_sensitive_column(&self, id: &str, at: Timestamp) -> Result<(), StoreError>;

    /// The id of the node this store handle writes for (its sessions are
    /// stored under it).
    fn node_id(&self) -> &str;
    /// Registers this node (its start, or a heartbeat): `node.id` must be
    /// [`Self::node_id`]. The heartbeat's time is the store's clock (nodes'
    /// clocks may differ). A node that was marked lost and heartbeats again
    /// is alive again (its ended sessions stay ended): the lost mark it
    /// cleared (when, by which node) is returned so the node can say so.
    async fn node_heartbeat(
        &self,
        node: &NodeRecord,
    ) -> Result<Option<(Timestamp, String)>, StoreError>;
    /// Ends, with reason `node_lost`, this node's sessions still open from
    /// before `this_run_started` (a run that crashed and was restarted
    /// before another node found it silent): how many.
    async fn end_sessions_of_earlier_runs(
        &self,
        this_run_started: Timestamp,
    ) -> Result<u64, StoreError>;
    /// Marks this node stopped cleanly at `at`.
    async fn node_stopped(&self, at: Timestamp) -> Result<(), StoreError>;
    /// Every node the store knows, by id.
    async fn list_nodes(&self) -> Result<Vec<NodeRecord>, StoreError>;
    /// Ends, with reason `node_lost`, the open sessions of every node other
    /// than this one silent for `silent_for` by the store's clock (which
    /// neither stopped nor was marked lost already), and marks those nodes
    /// lost by this one. Conditional: one node does it for each.
    async fn end_sessions_of_silent_nodes(
        &self,
        silent_for: std::time::Duration,
    ) -> Result<Vec<LostNode>, StoreError>;
    /// Keeps a finished session recording (`name`, its SHA-256 in hex)
    /// where every node can read it. The embedded store keeps none: the
    /// file in the node's data directory is the recording.
    async fn keep_recording(
        &self,
        _name: &str,
        _sha256: &str,
        _bytes: &[u8],
    ) -> Result<(), StoreError> {
        Ok(())
    }
    /// A recording another node kept with [`Self::keep_recording`].
    async fn recording(&self, _name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(None)
    }
    /// The names of the recordings this node kept.
    async fn kept_recordings(&self) -> Result<Vec<String>, StoreError> {
        Ok(Vec::new())
    }
    /// Wakes when another node may have changed shared state (a store
    /// notification): the value counts notifications. `None` for a store
    /// only this node uses. Lost notifications are covered by polling.
    fn changes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }
}
