//! The evidence log over the API: a checkpoint on demand, so that an
//! evidence pack can prove the events of the last seconds without waiting
//! for the gateway's `checkpoint_interval`.

use crate::routes::{require_admin, ApiError, ApiResult, ApiState};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};

/// Answer of `POST /v1/evidence/checkpoint`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Sealed {
    /// How many entries the newest signed checkpoint now covers: every
    /// entry written before the request was answered.
    pub tree_size: u64,
}

/// `POST /v1/evidence/checkpoint`: writes what waits and signs a checkpoint
/// over the whole log (none when the newest already covers it).
pub(crate) async fn seal(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> ApiResult<Json<Sealed>> {
    require_admin(&state, &headers)?;
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
