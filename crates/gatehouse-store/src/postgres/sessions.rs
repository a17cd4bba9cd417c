//! Sessions and their statement records in the shared store.

use super::texts::{self, storable};
use crate::{insert_chunks, rows, unavailable};
use gatehouse_core::{
    ActionRecord, SessionDetail, SessionEnd, SessionFilter, SessionId, SessionOutcome,
    SessionStart, SessionSummary, StoreError, Timestamp,
};
use sqlx::PgPool;
use std::collections::BTreeMap;

/// Statement rows per INSERT at most: 19 parameters each, well under
/// PostgreSQL's 65,535 per statement. Power-of-two sizes (see
/// [`insert_chunks`]) keep the prepared statements per connection few.
const STATEMENT_ROWS_PER_INSERT: usize = 1024;

/// A session with its statement count (alias `s`); callers add the rest.
const SESSION_COLUMNS: &str = "SELECT s.*, \
     (SELECT COUNT(*) FROM statements t WHERE t.session_id = s.id) AS statement_count \
     FROM sessions s";

pub(super) async fn start(
    pool: &PgPool,
    node_id: &str,
    s: &SessionStart,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO sessions (id, identity, groups_json, source_json, connection, protocol, \
         client_addr, client_user, application_name, started_at, node_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(s.id.to_string())
    .bind(storable(s.identity.subject.clone()))
    .bind(rows::to_json(&s.identity.groups)?)
    .bind(rows::to_json(&s.identity.source)?)
    .bind(storable(s.connection.clone()))
    .bind(&s.protocol)
    .bind(storable(s.client_addr.clone()))
    .bind(storable(s.client_user.clone()))
    .bind(s.application_name.clone().map(storable))
    .bind(s.started_at.unix_millis())
    .bind(node_id)
    .execute(pool)
    .await
    .map_err(unavailable)?;
    Ok(())
}

/// Records statements and session ends in one transaction. A batch tried
/// again after a commit whose success was lost does not fail on its own
/// rows (the recorder retries until a batch is written).
pub(super) async fn record_batch(
    pool: &PgPool,
    statements: &[ActionRecord],
    ends: &[SessionEnd],
) -> Result<(), StoreError> {
    let mut values = Vec::with_capacity(statements.len());
    let mut long_texts = BTreeMap::new();
    for st in statements {
        let v = rows::StatementValues::new(st)?;
        if let Some(key) = v.text_key() {
            long_texts.insert(key.to_string(), st.text.as_str());
        }
        values.push(v.map_texts(storable));
    }
    let mut tx = pool.begin().await.map_err(unavailable)?;
    texts::keep(&mut tx, &long_texts).await?;
    let mut values = values.into_iter();
    for chunk in insert_chunks(statements, STATEMENT_ROWS_PER_INSERT) {
        let mut q = sqlx::QueryBuilder::<sqlx::Postgres>::new(format!(
            "INSERT INTO statements ({}) ",
            rows::STATEMENT_COLUMNS
        ));
        q.push_values(values.by_ref().take(chunk.len()), rows::push_statement);
        q.push(" ON CONFLICT (session_id, seq) DO NOTHING");
        q.build().execute(&mut *tx).await.map_err(unavailable)?;
    }
    for e in ends {
        sqlx::query(
            "UPDATE sessions SET ended_at = $1, bytes_from_client = $2, bytes_to_client = $3, \
             end_reason = $4, end_detail = $5 WHERE id = $6",
        )
        .bind(e.ended_at.unix_millis())
        .bind(e.bytes_from_client as i64)
        .bind(e.bytes_to_client as i64)
        .bind(e.reason.as_str())
        .bind(e.detail.clone().map(storable))
        .bind(e.id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
    }
    tx.commit().await.map_err(unavailable)
}

pub(super) async fn list(
    pool: &PgPool,
    filter: &SessionFilter,
) -> Result<Vec<SessionSummary>, StoreError> {
    let rows = sqlx::query_as::<_, rows::SessionRow>(&format!(
        "{SESSION_COLUMNS} WHERE ($1::text IS NULL OR s.identity = $1) \
         AND ($2::text IS NULL OR s.connection = $2) \
         AND ($4::text IS NULL OR s.protocol = $4) \
         AND ($5::bigint IS NULL OR s.started_at >= $5) AND ($6::bigint IS NULL OR s.started_at < $6) \
         AND ($7::text IS NULL \
           OR ($7 = 'refused' AND EXISTS (SELECT 1 FROM statements t WHERE t.session_id = s.id \
                AND t.decision IN ('deny', 'review'))) \
           OR ($7 = 'masked' AND EXISTS (SELECT 1 FROM statements t WHERE t.session_id = s.id \
                AND (t.masking_json::jsonb ->> 'values_masked')::bigint > 0)) \
           OR ($7 = 'approved' AND EXISTS (SELECT 1 FROM approvals a \
                WHERE a.state = 'used' AND a.body_json::jsonb ->> 'session' = s.id))) \
         ORDER BY s.started_at DESC, s.id DESC LIMIT $3"
    ))
    .bind(&filter.identity)
    .bind(&filter.connection)
    .bind(i64::from(filter.limit.unwrap_or(100)))
    .bind(&filter.protocol)
    .bind(filter.since.map(Timestamp::unix_millis))
    .bind(filter.until.map(Timestamp::unix_millis))
    .bind(filter.outcome.map(SessionOutcome::as_str))
    .fetch_all(pool)
    .await
    .map_err(unavailable)?;
    rows.into_iter().map(TryInto::try_into).collect()
}

pub(super) async fn detail(
    pool: &PgPool,
    id: SessionId,
) -> Result<Option<SessionDetail>, StoreError> {
    let row = sqlx::query_as::<_, rows::SessionRow>(&format!("{SESSION_COLUMNS} WHERE s.id = $1"))
        .bind(id.to_string())
        .fetch_optional(pool)
        .await
        .map_err(unavailable)?;
    let Some(row) = row else { return Ok(None) };
    let summary: SessionSummary = row.try_into()?;
    let statements = sqlx::query_as::<_, rows::StatementRow>(
        "SELECT s.*, t.text AS shared_text FROM statements s \
         LEFT JOIN statement_texts t ON t.sha256 = s.text_sha256 \
         WHERE s.session_id = $1 ORDER BY s.seq",
    )
    .bind(id.to_string())
    .fetch_all(pool)
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
