//! Found sensitive columns over the API: list them, remove one (an
//! operator's decision, logged first), and run a discovery that samples a
//! connection's tables (`gatehouse masking discover`), its progress streamed
//! as JSON lines.

use crate::routes::{require_admin, ApiError, ApiResult, ApiState};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use gatehouse_core::{SampledColumn, SensitiveColumn, SensitiveColumnsError};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Rows sampled per table when the request does not say.
const DEFAULT_ROWS: u32 = 100;
/// Most rows sampled per table.
const MAX_ROWS: u32 = 10_000;

/// Query of `GET /v1/masking/columns`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnFilter {
    /// Only this connection's columns.
    pub connection: Option<String>,
}

/// Body of `POST /v1/masking/discover`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscoverRequest {
    /// The connection whose tables are sampled.
    pub connection: String,
    /// Rows read per table (default 100, at most 10,000).
    pub rows_per_table: Option<u32>,
}

/// One column a discovery found, in its final line.
#[derive(Debug, Serialize, Deserialize)]
pub struct DiscoveredColumn {
    /// What the sample showed.
    #[serde(flatten)]
    pub sampled: SampledColumn,
    /// The found column's id (for `masking remove`).
    pub id: Option<String>,
    /// Found now (`false`: it was known already).
    pub new: bool,
}

fn columns_error(e: SensitiveColumnsError) -> ApiError {
    match e {
        SensitiveColumnsError::Store(s) => s.into(),
        SensitiveColumnsError::Audit(a) => a.into(),
    }
}

/// `GET /v1/masking/columns`.
pub(crate) async fn list(
    State(state): State<ApiState>,
    headers: HeaderMap,
    query: Result<Query<ColumnFilter>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Vec<SensitiveColumn>>> {
    require_admin(&state, &headers)?;
    let Query(f) = query.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))?;
    let mut all = state.sensitive_columns.list();
    if let Some(c) = &f.connection {
        all.retain(|col| &col.connection == c);
    }
    Ok(Json(all))
}

/// `POST /v1/masking/columns/{id}/remove`.
pub(crate) async fn remove(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<SensitiveColumn>> {
    require_admin(&state, &headers)?;
    match state
        .sensitive_columns
        .remove(&id, "admin")
        .await
        .map_err(columns_error)?
    {
        Some(c) => {
            tracing::info!(column = %c.qualified(), connection = %c.connection, "found sensitive column removed");
            Ok(Json(c))
        }
        None => Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no found sensitive column {id:?}: `gatehouse masking columns` lists them"),
        )),
    }
}

/// `POST /v1/masking/discover`: JSON lines, `{"progress": …}` after each
/// table, then `{"result": …}` or `{"error": …}`.
pub(crate) async fn discover(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Result<Json<DiscoverRequest>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Response> {
    require_admin(&state, &headers)?;
    let Json(req) = body.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))?;
    let rows = req.rows_per_table.unwrap_or(DEFAULT_ROWS);
    if !(1..=MAX_ROWS).contains(&rows) {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!("rows_per_table must be from 1 to {MAX_ROWS}, not {rows}"),
        ));
    }
    let Some(sampler) = state.sampler.clone() else {
        return Err(ApiError(
            StatusCode::NOT_IMPLEMENTED,
            "this gateway samples no connection".into(),
        ));
    };
    sampler
        .can_sample(&req.connection)
        .map_err(|e| ApiError(StatusCode::CONFLICT, e))?;
    let (lines, rx) = mpsc::channel::<String>(16);
    tokio::spawn(run_discovery(state, sampler, req.connection, rows, lines));
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|line| (Ok::<_, std::convert::Infallible>(line + "\n"), rx))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .body(Body::from_stream(stream))
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

async fn run_discovery(
    state: ApiState,
    sampler: Arc<dyn gatehouse_core::ColumnSampler>,
    connection: String,
    rows: u32,
    lines: mpsc::Sender<String>,
) {
    let (progress, mut steps) = mpsc::channel(16);
    let forward = {
        let lines = lines.clone();
        tokio::spawn(async move {
            while let Some(step) = steps.recv().await {
                if lines
                    .send(json!({ "progress": step }).to_string())
                    .await
                    .is_err()
                {
                    break;
                }
            }
        })
    };
    let sampled = sampler.sample(&connection, rows, progress).await;
    let _ = forward.await;
    let last = match sampled {
        Ok(found) => match record(&state, &connection, found).await {
            Ok(columns) => json!({ "result": { "connection": connection, "columns": columns } }),
            Err(ApiError(_, e)) => json!({ "error": e }),
        },
        Err(e) => json!({ "error": format!("sampling {connection} failed: {e}") }),
    };
    let _ = lines.send(last.to_string()).await;
}

/// Records what a discovery found (logged, stored, protecting at once).
async fn record(
    state: &ApiState,
    connection: &str,
    found: Vec<SampledColumn>,
) -> Result<Vec<DiscoveredColumn>, ApiError> {
    let mut out = Vec::with_capacity(found.len());
    for s in found {
        let column = SensitiveColumn::found_by_sampling(
            connection,
            (&s.schema, &s.table, &s.column),
            &s.detector,
            (s.hits, s.sampled),
            "admin",
        );
        let new = state
            .sensitive_columns
            .found(&column)
            .await
            .map_err(columns_error)?;
        let id = state
            .sensitive_columns
            .of(connection)
            .iter()
            .find(|c| c.same_column(&column))
            .map(|c| c.id.clone());
        out.push(DiscoveredColumn {
            sampled: s,
            id,
            new,
        });
    }
    Ok(out)
}
