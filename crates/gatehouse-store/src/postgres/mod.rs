//! The shared store: a PostgreSQL database several gateway nodes use.
//!
//! Each node connects with [`PgStore::connect`], which checks the schema
//! (setting up an empty database, refusing an older or newer one), opens a
//! pool, and listens for the other nodes' notifications. Every operation
//! has the SQLite store's semantics; where nodes may race, the database
//! decides by a conditional update.

mod approvals;
mod evidence;
mod listener;
mod nodes;
mod recordings;
mod replica_log;
mod schema;
mod sensitive_columns;
mod sessions;
mod settings;
mod texts;
mod tokens;

pub use evidence::EvidenceReplicas;
pub use replica_log::ReplicaLog;
pub use schema::SchemaState;
pub use settings::{PgStoreSettings, StoreTls};

use async_trait::async_trait;
use gatehouse_core::{
    ActionRecord, ApprovalId, ApprovalRequest, ApprovalState, LostNode, NodeRecord,
    SensitiveColumn, SessionDetail, SessionEnd, SessionFilter, SessionId, SessionStart,
    SessionSummary, Store, StoreError, Timestamp, TokenId, TokenRecord,
};
use listener::Listening;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The server's clock in unix milliseconds, as SQL: the store's clock for
/// `changed_at`, which every node then reads alike.
const NOW_MILLIS: &str = "floor(extract(epoch from clock_timestamp()) * 1000)::bigint";

/// Connections per node at most.
const MAX_CONNECTIONS: u32 = 8;
/// How long an operation waits for a connection (and a new connection
/// for the server) before failing.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the first connection at [`PgStore::connect`] may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A node's handle on the shared PostgreSQL store. Clones share the pool
/// and the listener; the listener stops when the last clone is dropped or
/// the store is closed.
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    /// The listener's own connection, so it never waits for the pool.
    listen_pool: PgPool,
    node_id: String,
    shown_url: String,
    listening: Listening,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("url", &self.inner.shown_url)
            .field("node_id", &self.inner.node_id)
            .finish_non_exhaustive()
    }
}

/// One connection of the caller's own, its errors named by the url
/// without a password.
async fn connect_one(
    options: &PgConnectOptions,
    shown_url: &str,
) -> Result<PgConnection, StoreError> {
    let why = match tokio::time::timeout(CONNECT_TIMEOUT, options.connect()).await {
        Ok(Ok(conn)) => return Ok(conn),
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no answer within {CONNECT_TIMEOUT:?}"),
    };
    Err(StoreError::Unavailable(format!(
        "cannot connect to the store at {shown_url}: {why}"
    )))
}

impl PgStore {
    /// Connects node `settings.node_id` to the store: sets up the schema of
    /// an empty database (nodes starting together take turns), refuses a
    /// schema older (`gatehouse store migrate` first) or newer (upgrade this
    /// node) than this gatehouse's, and starts listening for changes.
    pub async fn connect(settings: PgStoreSettings) -> Result<PgStore, StoreError> {
        let options = settings.connect_options()?;
        let shown_url = settings.shown_url();
        let mut conn = connect_one(&options, &shown_url).await?;
        let prepared = schema::prepare(&mut conn, &options, &shown_url).await;
        // Closing releases the schema lock, whatever happened.
        let _ = conn.close().await;
        prepared?;
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy_with(options.clone());
        let listen_pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_lazy_with(options);
        let listening = Listening::start(listen_pool.clone()).await.map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot listen for changes on the store at {shown_url}: {e}"
            ))
        })?;
        Ok(PgStore {
            inner: Arc::new(Inner {
                pool,
                listen_pool,
                node_id: settings.node_id,
                shown_url,
                listening,
            }),
        })
    }

    /// Reads the nodes' evidence copies without joining the store as a
    /// node: no schema set up, no listening, a couple of connections (what
    /// `audit fleet` and the fleet's evidence packs use; a role that may
    /// only read suffices). Refuses an empty store or one of another
    /// schema version.
    pub async fn evidence_reader(
        settings: &PgStoreSettings,
    ) -> Result<EvidenceReplicas, StoreError> {
        let state = Self::schema_state(settings).await?;
        let shown_url = settings.shown_url();
        if let Some(why) = state.refusal(&shown_url) {
            return Err(StoreError::Unavailable(why));
        }
        if state == SchemaState::Empty {
            return Err(StoreError::Unavailable(format!(
                "the store at {shown_url} is empty: no node has used it yet"
            )));
        }
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy_with(settings.connect_options()?);
        Ok(EvidenceReplicas::new(pool))
    }

    /// Where the store's schema stands against this gatehouse's.
    pub async fn schema_state(settings: &PgStoreSettings) -> Result<SchemaState, StoreError> {
        let shown_url = settings.shown_url();
        let mut conn = connect_one(&settings.connect_options()?, &shown_url).await?;
        let state = schema::state(&mut conn).await.map_err(|e| {
            StoreError::Unavailable(format!(
                "reading the schema version of the store at {shown_url}: {e}"
            ))
        });
        let _ = conn.close().await;
        state
    }

    /// Applies the migrations the store lacks (`gatehouse store migrate`):
    /// returns the schema version before and after. Refuses a store
    /// migrated by a newer gatehouse.
    pub async fn migrate(settings: &PgStoreSettings) -> Result<(i64, i64), StoreError> {
        let shown_url = settings.shown_url();
        let options = settings.connect_options()?;
        let mut conn = connect_one(&options, &shown_url).await?;
        let migrated = schema::migrate(&mut conn, &options, &shown_url).await;
        let _ = conn.close().await;
        migrated
    }

    /// Stops listening and closes the pools, waiting for in-flight writes.
    pub async fn close(&self) {
        self.inner.listening.stop();
        self.inner.listen_pool.close().await;
        self.inner.pool.close().await;
    }

    /// The replicated evidence logs of every node and their witness
    /// cosignatures, on this store's pool.
    pub fn evidence_replicas(&self) -> EvidenceReplicas {
        EvidenceReplicas::new(self.inner.pool.clone())
    }

    fn pool(&self) -> &PgPool {
        &self.inner.pool
    }
}

#[async_trait]
impl Store for PgStore {
    async fn insert_token(&self, t: &TokenRecord) -> Result<(), StoreError> {
        tokens::insert(self.pool(), t).await
    }

    async fn find_token(&self, id: &TokenId) -> Result<Option<TokenRecord>, StoreError> {
        tokens::find(self.pool(), id).await
    }

    async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        tokens::list(self.pool()).await
    }

    async fn revoke_token(&self, id: &TokenId, at: Timestamp) -> Result<TokenRecord, StoreError> {
        tokens::revoke(self.pool(), id, at).await
    }

    async fn record_session_start(&self, s: &SessionStart) -> Result<(), StoreError> {
        sessions::start(self.pool(), &self.inner.node_id, s).await
    }

    async fn record_batch(
        &self,
        statements: &[ActionRecord],
        ends: &[SessionEnd],
    ) -> Result<(), StoreError> {
        sessions::record_batch(self.pool(), statements, ends).await
    }

    async fn list_sessions(
        &self,
        filter: &SessionFilter,
    ) -> Result<Vec<SessionSummary>, StoreError> {
        sessions::list(self.pool(), filter).await
    }

    async fn session(&self, id: SessionId) -> Result<Option<SessionDetail>, StoreError> {
        sessions::detail(self.pool(), id).await
    }

    async fn save_approval(&self, r: &ApprovalRequest) -> Result<(), StoreError> {
        approvals::save(self.pool(), r).await
    }

    async fn update_approval(
        &self,
        r: &ApprovalRequest,
        was: ApprovalState,
        was_votes: usize,
    ) -> Result<bool, StoreError> {
        approvals::update(self.pool(), r, was, was_votes).await
    }

    async fn use_approval(&self, id: &ApprovalId, at: Timestamp) -> Result<bool, StoreError> {
        approvals::use_once(self.pool(), id, at).await
    }

    async fn approvals_changed_since(
        &self,
        since: Option<Timestamp>,
        limit: u32,
    ) -> Result<gatehouse_core::ApprovalChanges, StoreError> {
        approvals::changed_since(self.pool(), since, limit).await
    }

    async fn approval(&self, id: &ApprovalId) -> Result<Option<ApprovalRequest>, StoreError> {
        approvals::get(self.pool(), id).await
    }

    async fn list_approvals_after(
        &self,
        state: ApprovalState,
        after: Option<&(Timestamp, ApprovalId)>,
        limit: u32,
    ) -> Result<Vec<ApprovalRequest>, StoreError> {
        approvals::list_after(self.pool(), state, after, limit).await
    }

    async fn list_approvals(
        &self,
        state: Option<ApprovalState>,
        limit: u32,
    ) -> Result<Vec<ApprovalRequest>, StoreError> {
        approvals::list(self.pool(), state, limit).await
    }

    async fn save_sensitive_column(&self, column: &SensitiveColumn) -> Result<(), StoreError> {
        sensitive_columns::save(self.pool(), column).await
    }

    async fn list_sensitive_columns(&self) -> Result<Vec<SensitiveColumn>, StoreError> {
        sensitive_columns::list(self.pool()).await
    }

    async fn remove_sensitive_column(&self, id: &str, at: Timestamp) -> Result<(), StoreError> {
        sensitive_columns::remove(self.pool(), id, at).await
    }

    fn node_id(&self) -> &str {
        &self.inner.node_id
    }

    async fn node_heartbeat(
        &self,
        node: &NodeRecord,
    ) -> Result<Option<(Timestamp, String)>, StoreError> {
        crate::nodes::check_own(&self.inner.node_id, node)?;
        nodes::heartbeat(self.pool(), node).await
    }

    async fn end_sessions_of_earlier_runs(
        &self,
        this_run_started: Timestamp,
    ) -> Result<u64, StoreError> {
        nodes::end_earlier_runs(self.pool(), &self.inner.node_id, this_run_started).await
    }

    async fn node_stopped(&self, at: Timestamp) -> Result<(), StoreError> {
        nodes::stopped(self.pool(), &self.inner.node_id, at).await
    }

    async fn list_nodes(&self) -> Result<Vec<NodeRecord>, StoreError> {
        nodes::list(self.pool()).await
    }

    async fn end_sessions_of_silent_nodes(
        &self,
        silent_for: std::time::Duration,
    ) -> Result<Vec<LostNode>, StoreError> {
        nodes::end_sessions_of_silent(self.pool(), &self.inner.node_id, silent_for).await
    }

    async fn keep_recording(
        &self,
        name: &str,
        sha256: &str,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        recordings::keep(self.pool(), &self.inner.node_id, name, sha256, bytes).await
    }

    async fn recording(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        recordings::get(self.pool(), name).await
    }

    async fn kept_recordings(&self) -> Result<Vec<String>, StoreError> {
        recordings::names(self.pool(), &self.inner.node_id).await
    }

    fn changes(&self) -> Option<watch::Receiver<u64>> {
        Some(self.inner.listening.changes.clone())
    }
}
