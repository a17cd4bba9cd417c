//! Gatehouse persistence: the embedded SQLite store.
//!
//! [`SqliteStore`] implements [`gatehouse_core::Store`] over one SQLite file in
//! the gateway's data directory, in WAL mode, with migrations embedded in the
//! binary and applied at open.

mod evidence;
mod rows;
mod sensitive_columns;
mod texts;

pub use evidence::{Durability, SegmentRecord, SqliteEvidenceStore};

use async_trait::async_trait;
use gatehouse_core::{
    ActionOutcome, ActionRecord, ApprovalId, ApprovalRequest, ApprovalState, SensitiveColumn,
    SessionDetail, SessionEnd, SessionFilter, SessionId, SessionStart, SessionSummary, Store,
    StoreError, Timestamp, TokenId, TokenRecord,
};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use std::path::Path;
use std::time::Duration;

/// Statement rows per INSERT at most (19 columns each, well under SQLite's
/// 32,766 parameters).
const STATEMENT_ROWS_PER_INSERT: usize = 256;

/// Splits rows into INSERTs of power-of-two sizes, largest first. Each size
/// is its own SQL text, which SQLite compiles and sqlx keeps per connection
/// (up to 100 programs each): with any size from 1 to 500 those programs,
/// about 100 KiB for a large INSERT, held 117 MB of the gateway's memory
/// after a few `pgbench -c 64` runs (measured with heaptrack). Nine sizes
/// bound it, and a batch still takes at most nine round trips.
fn insert_chunks<T>(mut rows: &[T]) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        if rows.is_empty() {
            return None;
        }
        let size = 1 << rows.len().min(STATEMENT_ROWS_PER_INSERT).ilog2();
        let (chunk, rest) = rows.split_at(size);
        rows = rest;
        Some(chunk)
    })
}

/// The embedded store: one SQLite database file.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and applies migrations.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
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
        Ok(Self { pool })
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
        // A long text is kept once, by content: every vote rewrites the body,
        // and the session record of the statement names the same text.
        let text_key = texts::key(&r.text);
        let body = match text_key {
            Some(_) => rows::to_json(&ApprovalRequest {
                text: String::new(),
                ..r.clone()
            })?,
            None => rows::to_json(r)?,
        };
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        if let Some(key) = &text_key {
            texts::keep(&mut tx, key, &r.text).await?;
        }
        sqlx::query(
            "INSERT INTO approvals (id, state, fingerprint, created_at, expires_at, body_json, \
             text_sha256) VALUES (?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET state = excluded.state, body_json = excluded.body_json, \
             text_sha256 = excluded.text_sha256",
        )
        .bind(&r.id.0)
        .bind(r.state.as_str())
        .bind(&r.fingerprint)
        .bind(r.created_at.unix_millis())
        .bind(r.expires_at.unix_millis())
        .bind(body)
        .bind(text_key)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)
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
             client_addr, client_user, application_name, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        for chunk in insert_chunks(statements) {
            let mut rows_json = Vec::with_capacity(chunk.len());
            let mut text_keys = Vec::with_capacity(chunk.len());
            for st in chunk {
                let key = texts::key(&st.text);
                if let Some(key) = &key {
                    texts::keep(&mut tx, key, &st.text).await?;
                }
                text_keys.push(key);
                let params = rows::to_json(&st.params)?;
                let policies = st
                    .decision
                    .as_ref()
                    .map(|d| rows::to_json(&d.policies))
                    .transpose()?;
                let masking = st.masking.as_ref().map(rows::to_json).transpose()?;
                let exchange = st.exchange.as_ref().map(rows::to_json).transpose()?;
                rows_json.push((params, policies, masking, exchange));
            }
            let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT INTO statements (session_id, seq, protocol, text, params_json, started_at, \
                 duration_us, status, command_tag, rows_affected, sqlstate, error_message, \
                 decision, decision_policies_json, policy_mode, decision_reason, masking_json, \
                 exchange_json, text_sha256) ",
            );
            q.push_values(
                chunk.iter().zip(rows_json).zip(text_keys),
                |mut b, ((st, (params, policies, masking, exchange)), text_key)| {
                    let (status, tag, rows, sqlstate, message) = match &st.outcome {
                        ActionOutcome::Ok {
                            summary: command_tag,
                            count: rows,
                        } => (
                            "ok",
                            Some(command_tag.clone()),
                            rows.map(|r| r as i64),
                            None,
                            None,
                        ),
                        ActionOutcome::Error {
                            code: sqlstate,
                            message,
                        } => (
                            "error",
                            None,
                            None,
                            Some(sqlstate.clone()),
                            Some(message.clone()),
                        ),
                        ActionOutcome::Incomplete => ("incomplete", None, None, None, None),
                    };
                    b.push_bind(st.session_id.to_string())
                        .push_bind(st.seq as i64)
                        .push_bind(st.protocol.clone())
                        .push_bind(match text_key {
                            Some(_) => String::new(),
                            None => st.text.clone(),
                        })
                        .push_bind(params)
                        .push_bind(st.started_at.unix_millis())
                        .push_bind(st.duration_us as i64)
                        .push_bind(status)
                        .push_bind(tag)
                        .push_bind(rows)
                        .push_bind(sqlstate)
                        .push_bind(message)
                        .push_bind(st.decision.as_ref().map(|d| d.decision.as_str()))
                        .push_bind(policies)
                        .push_bind(st.decision.as_ref().map(|d| d.mode.as_str()))
                        .push_bind(st.decision.as_ref().and_then(|d| d.reason.clone()))
                        .push_bind(masking)
                        .push_bind(exchange)
                        .push_bind(text_key);
                },
            );
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
             ORDER BY s.started_at DESC, s.id DESC LIMIT ?3",
        )
        .bind(&filter.identity)
        .bind(&filter.connection)
        .bind(i64::from(filter.limit.unwrap_or(100)))
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
}

/// An approval's body with its long text joined back (see [`texts`]).
const APPROVAL_COLUMNS: &str = "SELECT a.id, a.body_json, a.text_sha256, t.text AS shared_text \
     FROM approvals a LEFT JOIN statement_texts t ON t.sha256 = a.text_sha256";

#[cfg(test)]
mod tests;
