use crate::{
    ActionRecord, ApprovalId, ApprovalRequest, ApprovalState, SensitiveColumn, SessionDetail,
    SessionEnd, SessionFilter, SessionId, SessionStart, SessionSummary, StoreError, Timestamp,
    TokenId, TokenRecord,
};
use async_trait::async_trait;

/// Persistence for the gateway. The embedded SQLite store implements it; a
/// shared PostgreSQL store for several gateway nodes can follow.
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

    /// Stores an approval request, replacing its earlier state.
    async fn save_approval(&self, request: &ApprovalRequest) -> Result<(), StoreError>;
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
}
