//! The evidence log over the API: a checkpoint on demand, so that an
//! evidence pack can prove the events of the last seconds without waiting
//! for the gateway's `checkpoint_interval`; and, for auditors, the log's
//! state, the same verification `gatehouse audit verify` runs, and an
//! inclusion proof of any entry.

use crate::caller::require_auditor;
use crate::routes::{ApiError, ApiResult, ApiState};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};

/// Reads the gateway's own evidence log as `gatehouse audit` does (the
/// file, read-only, never through the writer): implemented by the binary,
/// which knows where the log, its key, segments and witness files are.
/// Answers are the JSON the matching `audit` command prints with `--json`.
#[async_trait::async_trait]
pub trait EvidenceReview: Send + Sync {
    /// The log's size, its newest checkpoint and which witnesses hold it.
    async fn status(&self) -> Result<serde_json::Value, ReviewError>;
    /// `gatehouse audit verify --json`.
    async fn verify(&self) -> Result<serde_json::Value, ReviewError>;
    /// `gatehouse audit proof SEQ`: the inclusion proof of entry `seq`.
    async fn prove(&self, seq: u64) -> Result<serde_json::Value, ReviewError>;
    /// `gatehouse evidence --from --to`: the evidence pack of the period
    /// `[from, to)`, as a tar archive of its folder; `sealed` is the size of
    /// the checkpoint the gateway signed just before, when it did.
    async fn pack(
        &self,
        from: gatehouse_core::Timestamp,
        to: gatehouse_core::Timestamp,
        sealed: Option<u64>,
    ) -> Result<EvidencePack, ReviewError>;
}

/// An evidence pack, archived.
pub struct EvidencePack {
    /// The tar archive of the pack's folder.
    pub tar: Vec<u8>,
    /// Its file name, e.g. `gatehouse-evidence-gw-1-2026-11-01-2026-12-01.tar`.
    pub file_name: String,
}

/// Body of `POST /v1/evidence/pack`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackRequest {
    /// Start of the period, inclusive (RFC 3339).
    pub from: gatehouse_core::Timestamp,
    /// End of the period, exclusive (RFC 3339).
    pub to: gatehouse_core::Timestamp,
}

/// `POST /v1/evidence/pack`: the evidence pack of a period, as a tar
/// archive (what `gatehouse evidence --from --to --out` writes, with its
/// verifier). A checkpoint over what is written is signed first, so the
/// pack proves the period's last events.
pub(crate) async fn pack(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Result<Json<PackRequest>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let who = require_auditor(&state, &headers).await?;
    let Json(req) = body.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))?;
    if req.to <= req.from {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "the period is empty: `to` must be after `from`".into(),
        ));
    }
    let review = review(&state)?;
    let sealed = match &state.evidence {
        Some(log) => log.seal().await.ok(),
        None => None,
    };
    let pack = review
        .pack(req.from, req.to, sealed)
        .await
        .map_err(|e| match e {
            ReviewError::Busy => failed("a pack", e),
            ReviewError::Failed(e) => ApiError(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("no evidence pack for {} to {}: {e}", req.from, req.to),
            ),
        })?;
    tracing::info!(
        by = who.subject(),
        bytes = pack.tar.len(),
        "evidence pack downloaded"
    );
    let disposition = format!("attachment; filename=\"{}\"", pack.file_name);
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                "application/x-tar".to_string(),
            ),
            (axum::http::header::CONTENT_DISPOSITION, disposition),
        ],
        pack.tar,
    )
        .into_response())
}

/// Why the log could not be read for a review.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// Another reading of the whole log is under way (one at a time).
    #[error("another reading of the evidence log is under way; try again when it is done")]
    Busy,
    /// The log could not be read, or the answer could not be made.
    #[error("{0}")]
    Failed(String),
}

fn review(state: &ApiState) -> ApiResult<&dyn EvidenceReview> {
    state.evidence_review.as_deref().ok_or_else(|| {
        ApiError(
            StatusCode::NOT_IMPLEMENTED,
            "this gateway offers no evidence review over its API; run `gatehouse audit verify` on its host".into(),
        )
    })
}

fn failed(what: &str, e: ReviewError) -> ApiError {
    match e {
        ReviewError::Busy => ApiError(StatusCode::TOO_MANY_REQUESTS, e.to_string()),
        ReviewError::Failed(e) => {
            tracing::warn!(error = %e, "evidence review: {what} failed");
            ApiError(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the evidence log could not be read for {what}: {e}"),
            )
        }
    }
}

/// `GET /v1/evidence`: the log's size and newest checkpoint.
pub(crate) async fn status(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    require_auditor(&state, &headers).await?;
    review(&state)?
        .status()
        .await
        .map(Json)
        .map_err(|e| failed("its status", e))
}

/// `POST /v1/evidence/verify`: every entry and checkpoint verified now.
/// Findings are an answer (200 with `ok: false`), not an error.
pub(crate) async fn verify(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    let who = require_auditor(&state, &headers).await?;
    let report = review(&state)?
        .verify()
        .await
        .map_err(|e| failed("verification", e))?;
    tracing::info!(by = who.subject(), ok = %report["ok"], "evidence log verified on request");
    Ok(Json(report))
}

/// `GET /v1/evidence/proofs/{seq}`: entry `seq`'s inclusion proof against
/// the newest checkpoint, for `gatehouse audit verify-proof`.
pub(crate) async fn proof(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(seq): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    require_auditor(&state, &headers).await?;
    let seq: u64 = seq.parse().map_err(|_| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("{seq:?} is not an entry number (0, 1, 2…)"),
        )
    })?;
    review(&state)?.prove(seq).await.map(Json).map_err(|e| match e {
        ReviewError::Busy => failed("a proof", e),
        ReviewError::Failed(e) => ApiError(
            StatusCode::NOT_FOUND,
            format!("no inclusion proof of entry {seq}: {e} (an entry of the last seconds is proved once a checkpoint covers it: POST /v1/evidence/checkpoint signs one now)"),
        ),
    })
}

/// Answer of `POST /v1/evidence/checkpoint`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Sealed {
    /// How many entries the newest signed checkpoint now covers: every
    /// entry written before the request was answered.
    pub tree_size: u64,
}

/// `POST /v1/evidence/checkpoint`: writes what waits and signs a checkpoint
/// over the whole log (none when the newest already covers it). The admin
/// and auditors (who need recent entries covered to prove them).
pub(crate) async fn seal(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> ApiResult<Json<Sealed>> {
    require_auditor(&state, &headers).await?;
    let Some(log) = &state.evidence else {
        return Err(ApiError(
            StatusCode::NOT_IMPLEMENTED,
            "this gateway signs no checkpoints on demand".into(),
        ));
    };
    match log.seal().await {
        Ok(tree_size) => {
            tracing::info!(tree_size, "checkpoint signed on request");
            Ok(Json(Sealed { tree_size }))
        }
        Err(e) => {
            tracing::error!(error = %e, "could not sign a checkpoint on request");
            Err(ApiError(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the gateway could not sign a checkpoint: {e}; its log says more"),
            ))
        }
    }
}
