//! Gatehouse persistence: the embedded SQLite store of one gateway node, or
//! a PostgreSQL store several nodes share.
//!
//! [`SqliteStore`] implements [`gatehouse_core::Store`] over one SQLite file in
//! the gateway's data directory, in WAL mode, with migrations embedded in the
//! binary and applied at open. [`PgStore`] implements it over a PostgreSQL
//! database every node of a cluster uses: races between nodes (an approval
//! used twice, a vote lost, a silent node's sessions ended twice) are decided
//! there by conditional updates, and notifications wake the other nodes.
//!
//! Each node's evidence log stays local ([`SqliteEvidenceStore`]); with a
//! shared store, each node also copies its log there and the nodes cosign
//! each other's checkpoints ([`EvidenceReplicas`], each copy readable as
//! an evidence store through [`ReplicaLog`]), so one verification from any
//! node covers the whole fleet.
//!
//! The top-level modules beside this one are the SQLite store's; the
//! PostgreSQL store's are under `postgres`. Both share the row conversions
//! (`rows`) and the long-text scheme (`texts`).

mod approvals;
mod evidence;
mod nodes;
mod postgres;
mod rows;
mod sensitive_columns;
mod texts;

pub use evidence::{Durability, SegmentRecord, SqliteEvidenceStore};
pub use postgres::{EvidenceReplicas, PgStore, PgStoreSettings, ReplicaLog, SchemaState, StoreTls};

use async_trait::async_trait;
use gatehouse_core::{
    ActionRecord, ApprovalId, ApprovalRequest, ApprovalState, LostNode, NodeRecord,
    SensitiveColumn, SessionDetail, SessionEnd, SessionFilter, SessionId, SessionOutcome,
    SessionStart, SessionSummary, Store, StoreError, Timestamp, TokenId, TokenRecord,
};
use rows::APPROVAL_COLUMNS;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use std::path::Path;
use std::time::Duration;

/// Statement rows per INSERT at most (19 columns each, well under SQLite's
/// 32,766 parameters).
const STATEMENT_ROWS_PER_INSERT: usize = 256;

/// Splits rows into INSERTs of power-of-two sizes, largest first, of at
/// most `max` (a power of two) rows. Each size is its own SQL text, which
/// SQLite compiles and sqlx keeps per connection (up to 100 programs each;
/// PostgreSQL prepares each too): with any size from 1 to 500 those
/// programs, about 100 KiB for a large INSERT, held 117 MB of the gateway's
/// memory after a few `pgbench -c 64` runs (measured with heaptrack). A few
/// sizes bound it, and a batch still takes few round trips.
pub(crate) fn insert_chunks<T>(mut rows: &[T], max: usize) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        if rows.is_empty() {
            return None;
        }
        let size = 1 << rows.len().min(max).ilog2();
        let (chunk, rest) = rows.split_at(size);
        rows = rest;
        Some(chunk)
    })
}

/// The embedded store: one SQLite database file, one node's.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
    node_id: String,
}

pub(crate) fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and applies
    /// migrations, for node `local` (a store only one node uses).
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_for_node(path, "local").await
    }

    /// [`Self::open`] for node `node_id`: its sessions are stored under it.
    pub async fn open_for_node(path: &Path, node_id: &str) -> Result<Self, StoreError> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await
            .map_err(|e| unavailable(format!("opening {}: {e}", path.display())))?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(|e| unavailable(format!("migrating {}: {e}", path.display())))?;
        Ok(Self {
            pool,
            node_id: node_id.to_string(),
        })
    }

    /// Closes the pool, waiting for in-flight writes.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn insert_token(&self, t: &TokenRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO tokens (id, identity, groups_json, secret_hash, created_at, expires_at, revoked_at, ssh_key) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&t.id.0)
        .bind(&t.identity)
        .bind(rows::to_json(&t.groups)?)
        .bind(&t.secret_hash)
        .bind(t.created_at.unix_millis())
        .bind(t.expires_at.unix_millis())
        .bind(t.revoked_at.map(Timestamp::unix_millis))
        .bind(&t.ssh_key)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    async fn save_approval(&self, r: &ApprovalRequest) -> Result<(), StoreError> {
        let (body, text_key) = rows::approval_body(r)?;
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        if let Some(key) = &text_key {
            texts::keep(&mut tx, key, &r.text).await?;
        }
        sqlx::query(
            "INSERT INTO approvals (id, state, fingerprint, created_at, expires_at, body_json, \
             text_sha256, vote_count, changed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET state = excluded.state, body_json = excluded.body_json, \
             text_sha256 = excluded.text_sha256, vote_count = excluded.vote_count, \
             changed_at = excluded.changed_at",
        )
        .bind(&r.id.0)
        .bind(r.state.as_str())
        .bind(&r.fingerprint)
        .bind(r.created_at.unix_millis())
        .bind(r.expires_at.unix_millis())
        .bind(body)
        .bind(text_key)
        .bind(r.votes.len() as i64)
        .bind(Timestamp::now().unix_millis())
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)
    }

    async fn update_approval(
        &self,
        r: &ApprovalRequest,
        was: ApprovalState,
        was_votes: usize,
    ) -> Result<bool, StoreError> {
        approvals::update(&self.pool, r, was, was_votes).await
    }

    async fn use_approval(&self, id: &ApprovalId, at: Timestamp) -> Result<bool, StoreError> {
        approvals::use_once(&self.pool, id, at).await
    }

    async fn approvals_changed_since(
        &self,
        since: Option<Timestamp>,
        limit: u32,
    ) -> Result<gatehouse_core::ApprovalChanges, StoreError> {
        approvals::changed_since(&self.pool, since, limit).await
    }

    async fn approval(&self, id: &ApprovalId) -> Result<Option<ApprovalRequest>, StoreError> {
        let row =
            sqlx::query_as::<_, rows::ApprovalRow>(&format!("{APPROVAL_COLUMNS} WHERE a.id = ?"))
                .bind(&id.0)
                .fetch_optional(&self.pool)
                .await
                .map_err(unavailable)?;
        row.map(TryInto::try_into).transpose()
    }

    async fn list_approvals_after(
        &self,
        state: ApprovalState,
        after: Option<&(Timestamp, ApprovalId)>,
        limit: u32,
    ) -> Result<Vec<ApprovalRequest>, StoreError> {
        // Keyset pagination over the (state, created_at) index: each page
        // costs its own rows, however deep into the table it is.
        let (after_at, after_id) = match after {
            Some((at, id)) => (at.unix_millis(), id.0.as_str()),
            None => (i64::MIN, ""),
        };
        let rows = sqlx::query_as::<_, rows::ApprovalRow>(&format!(
            "{APPROVAL_COLUMNS} WHERE a.state = ?1 \
             AND (a.created_at > ?2 OR (a.created_at = ?2 AND a.id > ?3)) \
             ORDER BY a.created_at, a.id LIMIT ?4"
        ))
        .bind(state.as_str())
        .bind(after_at)
        .bind(after_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn list_approvals(
        &self,
        state: Option<ApprovalState>,
        limit: u32,
    ) -> Result<Vec<ApprovalRequest>, StoreError> {
        let rows = sqlx::query_as::<_, rows::ApprovalRow>(&format!(
            "{APPROVAL_COLUMNS} WHERE (?1 IS NULL OR a.state = ?1) \
             ORDER BY a.created_at DESC, a.id DESC LIMIT ?2"
        ))
        .bind(state.map(ApprovalState::as_str))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn save_sensitive_column(&self, column: &SensitiveColumn) -> Result<(), StoreError> {
        sensitive_columns::save(&self.pool, column).await
    }

    async fn list_sensitive_columns(&self) -> Result<Vec<SensitiveColumn>, StoreError> {
        sensitive_columns::list(&self.pool).await
    }

    async fn remove_sensitive_column(&self, id: &str, at: Timestamp) -> Result<(), StoreError> {
        sensitive_columns::remove(&self.pool, id, at).await
    }

    async fn find_token(&self, id: &TokenId) -> Result<Option<TokenRecord>, StoreError> {
        let row = sqlx::query_as::<_, rows::TokenRow>("SELECT * FROM tokens WHERE id = ?")
            .bind(&id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.map(TryInto::try_into).transpose()
    }

    async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        let rows = sqlx::query_as::<_, rows::TokenRow>(
            "SELECT * FROM tokens ORDER BY created_at DESC, id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn revoke_token(&self, id: &TokenId, at: Timestamp) -> Result<TokenRecord, StoreError> {
        // Keep the first revocation time if revoked twice.
        sqlx::query("UPDATE tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?")
            .bind(at.unix_millis())
            .bind(&id.0)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        self.find_token(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("token {id}")))
    }

    async fn record_session_start(&self, s: &SessionStart) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (id, identity, groups_json, source_json, connection, protocol, \
             client_addr, client_user, application_name, started_at, node_id) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(s.id.to_string())
        .bind(&s.identity.subject)
        .bind(rows::to_json(&s.identity.groups)?)
        .bind(rows::to_json(&s.identity.source)?)
        .bind(&s.connection)
        .bind(&s.protocol)
        .bind(&s.client_addr)
        .bind(&s.client_user)
        .bind(&s.application_name)
        .bind(s.started_at.unix_millis())
        .bind(&self.node_id)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    async fn record_batch(
        &self,
        statements: &[ActionRecord],
        ends: &[SessionEnd],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        // Multi-row INSERTs: each statement is a round trip to SQLite's worker
        // thread, so one per row would dominate the recorder's cost.
        for chunk in insert_chunks(statements, STATEMENT_ROWS_PER_INSERT) {
            let mut values = Vec::with_capacity(chunk.len());
            for st in chunk {
                let v = rows::StatementValues::new(st)?;
                if let Some(key) = v.text_key() {
                    texts::keep(&mut tx, key, &st.text).await?;
                }
                values.push(v);
            }
            let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(format!(
                "INSERT INTO statements ({}) ",
                rows::STATEMENT_COLUMNS
            ));
            q.push_values(values, rows::push_statement);
            // A batch tried again after a commit that did land (its success
            // was lost) must not fail on its own rows: the recorder retries
            // until a batch is written.
            q.push(" ON CONFLICT (session_id, seq) DO NOTHING");
            q.build().execute(&mut *tx).await.map_err(unavailable)?;
        }
        for e in ends {
            sqlx::query(
                "UPDATE sessions SET ended_at = ?, bytes_from_client = ?, bytes_to_client = ?, \
                 end_reason = ?, end_detail = ? WHERE id = ?",
            )
            .bind(e.ended_at.unix_millis())
            .bind(e.bytes_from_client as i64)
            .bind(e.bytes_to_client as i64)
            .bind(e.reason.as_str())
            .bind(&e.detail)
            .bind(e.id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)
    }

    async fn list_sessions(
        &self,
        filter: &SessionFilter,
    ) -> Result<Vec<SessionSummary>, StoreError> {
        let rows = sqlx::query_as::<_, rows::SessionRow>(
            "SELECT s.*, (SELECT COUNT(*) FROM statements t WHERE t.session_id = s.id) AS statement_count \
             FROM sessions s WHERE (?1 IS NULL OR s.identity = ?1) AND (?2 IS NULL OR s.connection = ?2) \
             AND (?4 IS NULL OR s.protocol = ?4) \
             AND (?5 IS NULL OR s.started_at >= ?5) AND (?6 IS NULL OR s.started_at < ?6) \
             AND (?7 IS NULL \
               OR (?7 = 'refused' AND EXISTS (SELECT 1 FROM statements t WHERE t.session_id = s.id \
                    AND t.decision IN ('deny', 'review'))) \
               OR (?7 = 'masked' AND EXISTS (SELECT 1 FROM statements t WHERE t.session_id = s.id \
                    AND json_extract(t.masking_json, '$.values_masked') > 0)) \
               OR (?7 = 'approved' AND EXISTS (SELECT 1 FROM approvals a \
                    WHERE a.state = 'used' AND json_extract(a.body_json, '$.session') = s.id))) \
             ORDER BY s.started_at DESC, s.id DESC LIMIT ?3",
        )
        .bind(&filter.identity)
        .bind(&filter.connection)
        .bind(i64::from(filter.limit.unwrap_or(100)))
        .bind(&filter.protocol)
        .bind(filter.since.map(Timestamp::unix_millis))
        .bind(filter.until.map(Timestamp::unix_millis))
        .bind(filter.outcome.map(SessionOutcome::as_str))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn session(&self, id: SessionId) -> Result<Option<SessionDetail>, StoreError> {
        let row = sqlx::query_as::<_, rows::SessionRow>(
            "SELECT s.*, (SELECT COUNT(*) FROM statements t WHERE t.session_id = s.id) AS statement_count \
             FROM sessions s WHERE s.id = ?",
        )
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        let Some(row) = row else { return Ok(None) };
        let summary: SessionSummary = row.try_into()?;
        let statements = sqlx::query_as::<_, rows::StatementRow>(
            "SELECT s.*, t.text AS shared_text FROM statements s \
             LEFT JOIN statement_texts t ON t.sha256 = s.text_sha256 \
             WHERE s.session_id = ? ORDER BY s.seq",
        )
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?
        .into_iter()
        .map(TryInto::try_into)
        .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(SessionDetail {
            summary,
            statements,
        }))
    }

    fn node_id(&self) -> &str {
        &self.node_id
    }

    async fn node_heartbeat(
        &self,
        node: &NodeRecord,
    ) -> Result<Option<(Timestamp, String)>, StoreError> {
        nodes::check_own(&self.node_id, node)?;
        nodes::heartbeat(&self.pool, node).await
    }

    async fn end_sessions_of_earlier_runs(
        &self,
        this_run_started: Timestamp,
    ) -> Result<u64, StoreError> {
        nodes::end_earlier_runs(&self.pool, &self.node_id, this_run_started).await
    }

    async fn node_stopped(&self, at: Timestamp) -> Result<(), StoreError> {
        nodes::stopped(&self.pool, &self.node_id, at).await
    }

    async fn list_nodes(&self) -> Result<Vec<NodeRecord>, StoreError> {
        nodes::list(&self.pool).await
    }

    async fn end_sessions_of_silent_nodes(
        &self,
        silent_for: std::time::Duration,
    ) -> Result<Vec<LostNode>, StoreError> {
        let now = Timestamp::now();
        let silent_before = Timestamp::from_unix_millis(
            now.unix_millis()
                .saturating_sub(i64::try_from(silent_for.as_millis()).unwrap_or(i64::MAX)),
        );
        nodes::end_sessions_of_silent(&self.pool, &self.node_id, silent_before, now).await
    }
}

#[cfg(test)]
mod tests;
