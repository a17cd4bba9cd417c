use crate::caller::require_auditor;
use crate::{access_review, approvals, console, evidence, masking, AdminKey};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use gatehouse_core::{
    AuditError, AuditEvent, AuditTrail, SessionDetail, SessionFilter, SessionId, SessionSummary,
    Store, StoreError, Timestamp, TokenId, TokenRecord,
};
use gatehouse_identity::mint_service_token;
use gatehouse_policy::PolicyHandle;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// What the API handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// The gateway's store.
    pub store: Arc<dyn Store>,
    /// The admin key's hash.
    pub admin_key: AdminKey,
    /// The policy in force.
    pub policy: Arc<PolicyHandle>,
    /// The evidence log.
    pub audit: Arc<dyn AuditTrail>,
    /// The configured connection names (what an access review covers).
    pub connections: Arc<[(String, String)]>,
    /// Approval requests and decisions.
    pub approvals: Arc<gatehouse_core::ApprovalDesk>,
    /// Checks approvers' tokens (service tokens or OIDC tokens).
    pub authenticator: gatehouse_identity::Authenticator,
    /// The evidence log's writer, for checkpoints on demand (None: not offered).
    pub evidence: Option<gatehouse_evidence::EvidenceLog>,
    /// Columns the masking detectors found sensitive.
    pub sensitive_columns: Arc<gatehouse_core::SensitiveColumns>,
    /// Samples connections for `masking discover` (None: not offered).
    pub sampler: Option<Arc<dyn gatehouse_core::ColumnSampler>>,
    /// Where exec and attach recordings are kept.
    pub recordings: std::path::PathBuf,
    /// The SSH CA and the lifetime of its certificates (None: no SSH listener).
    pub ssh_ca: Option<(gatehouse_ssh::CertificateAuthority, Duration)>,
    /// The web console: its auditors and who is signed in.
    pub console: Arc<console::Console>,
    /// Reads the evidence log for auditors (None: not offered).
    pub evidence_review: Option<Arc<dyn evidence::EvidenceReview>>,
}

/// Answer of `POST /v1/policy/reload`.
#[derive(Debug, Serialize, Deserialize)]
pub struct PolicyReloaded {
    /// The new policy generation.
    pub generation: u64,
    /// The files now in force.
    pub files: Vec<PolicyFileSummary>,
}

/// A policy file in force.
#[derive(Debug, Serialize, Deserialize)]
pub struct PolicyFileSummary {
    /// Its path.
    pub path: String,
    /// SHA-256 of its contents.
    pub sha256: String,
    /// How many policies it holds.
    pub policies: usize,
}

impl PolicyFileSummary {
    /// The files of the policy `engine` holds.
    pub fn of(engine: &gatehouse_policy::PolicyEngine) -> Vec<Self> {
        engine
            .files()
            .iter()
            .map(|f| Self {
                path: f.path.display().to_string(),
                sha256: f.sha256.clone(),
                policies: f.policies,
            })
            .collect()
    }
}

/// The JSON body of every error answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong and what to do.
    pub error: String,
}

/// Body of `POST /v1/tokens`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    /// Identity subject.
    pub identity: String,
    /// Groups.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Lifetime in seconds.
    pub ttl_seconds: u64,
}

/// Answer of `POST /v1/tokens`: the only time the token text is shown.
#[derive(Debug, Serialize, Deserialize)]
pub struct CreatedToken {
    /// The token text.
    pub token: String,
    /// The stored record.
    #[serde(flatten)]
    pub record: TokenRecord,
}

/// Longest token lifetime accepted.
pub(crate) const MAX_TTL: Duration = Duration::from_secs(366 * 24 * 3600);

pub(crate) struct ApiError(pub(crate) StatusCode, pub(crate) String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(ErrorBody { error: self.1 })).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => {
                ApiError(StatusCode::NOT_FOUND, format!("{what} not found"))
            }
            other => {
                tracing::error!(error = %other, "store error in API");
                ApiError(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the gateway's store is unavailable; try again later".into(),
                )
            }
        }
    }
}

impl From<AuditError> for ApiError {
    fn from(e: AuditError) -> Self {
        tracing::error!(error = %e, "evidence log error in API");
        ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "the gateway's evidence log is unavailable, so nothing was changed; try again later"
                .into(),
        )
    }
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;

/// The event for a loaded policy: each file with its hash.
pub fn policy_event(trigger: &str, policy: &PolicyHandle) -> AuditEvent {
    let (engine, _) = policy.current();
    let files: Vec<(String, String)> = engine
        .files()
        .iter()
        .map(|f| (f.path.display().to_string(), f.sha256.clone()))
        .collect();
    AuditEvent::policy_loaded(trigger, policy.mode().as_str(), &files)
}

/// The API's routes.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/openapi.json", get(openapi))
        .route("/v1/tokens", post(create_token).get(list_tokens))
        .route("/v1/tokens/{id}/revoke", post(revoke_token))
        .route("/v1/sessions", get(list_sessions))
        .route("/v1/nodes", get(list_nodes))
        .route("/v1/sessions/{id}", get(show_session))
        .route("/v1/sessions/{id}/recordings/{seq}", get(recording))
        .route("/v1/policy/reload", post(reload_policy))
        .route("/v1/ssh/certificates", post(crate::ssh::issue))
        .route("/v1/ssh/keys", post(crate::ssh::register))
        .route("/v1/access-review", get(access_review::show))
        .route("/v1/access-review/sign-off", post(access_review::sign_off))
        .route("/v1/approvals", get(approvals::list))
        .route("/v1/approvals/{id}", get(approvals::show))
        .route("/v1/approvals/{id}/approve", post(approvals::approve))
        .route("/v1/approvals/{id}/deny", post(approvals::deny))
        .route("/v1/evidence/checkpoint", post(evidence::seal))
        .route("/v1/masking/columns", get(masking::list))
        .route("/v1/masking/columns/{id}/remove", post(masking::remove))
        .route("/v1/masking/discover", post(masking::discover))
        .route("/v1/evidence", get(evidence::status))
        .route("/v1/evidence/verify", post(evidence::verify))
        .route("/v1/evidence/proofs/{seq}", get(evidence::proof))
        .route("/v1/evidence/pack", post(evidence::pack))
        .merge(console::routes(&state))
        .fallback(|| async { ApiError(StatusCode::NOT_FOUND, "no such API endpoint".into()) })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            console::signed_in_requests,
        ))
        .layer(axum::middleware::from_fn(console::security_headers))
        .with_state(state)
}

pub(crate) fn require_admin(state: &ApiState, headers: &HeaderMap) -> ApiResult<()> {
    match crate::caller::bearer(headers) {
        Some(k) if state.admin_key.matches(k) => Ok(()),
        Some(_) => Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "admin key not accepted".into(),
        )),
        None => Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "missing admin key: send `Authorization: Bearer <key from data_dir/admin.key>`".into(),
        )),
    }
}

/// The API's OpenAPI 3.1 description.
pub const OPENAPI: &str = include_str!("openapi.json");

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

async fn create_token(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Result<Json<CreateTokenRequest>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    require_admin(&state, &headers)?;
    let Json(req) = body.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))?;
    let ttl = Duration::from_secs(req.ttl_seconds);
    if ttl.is_zero() || ttl > MAX_TTL {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "ttl must be between 1 second and 366 days".into(),
        ));
    }
    let minted = mint_service_token(&req.identity, &req.groups, ttl, Timestamp::now())
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string()))?;
    // Logged before it exists: a token the log does not know never works.
    state
        .audit
        .append(vec![AuditEvent::token_created(&minted.record)])
        .await?;
    state.store.insert_token(&minted.record).await?;
    tracing::info!(token = %minted.record.id, identity = %minted.record.identity, "token created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            token: minted.secret.expose().to_string(),
            record: minted.record,
        }),
    ))
}

async fn list_tokens(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<TokenRecord>>> {
    require_admin(&state, &headers)?;
    Ok(Json(state.store.list_tokens().await?))
}

async fn revoke_token(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<TokenRecord>> {
    require_admin(&state, &headers)?;
    let record = state
        .store
        .revoke_token(&TokenId(id), Timestamp::now())
        .await?;
    tracing::info!(token = %record.id, identity = %record.identity, "token revoked");
    // Revoked first (the safe direction), then logged.
    if let Err(e) = state
        .audit
        .append(vec![AuditEvent::token_revoked(&record)])
        .await
    {
        tracing::error!(error = %e, token = %record.id, "token revoked but not logged");
        return Err(ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "token {} is revoked, but the evidence log is unavailable and did not record it; \
                 tell the gateway's operator",
                record.id
            ),
        ));
    }
    Ok(Json(record))
}

async fn list_sessions(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Query(filter): Query<SessionFilter>,
) -> ApiResult<Json<Vec<SessionSummary>>> {
    require_auditor(&state, &headers).await?;
    Ok(Json(state.store.list_sessions(&filter).await?))
}

async fn list_nodes(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<gatehouse_core::NodeRecord>>> {
    require_auditor(&state, &headers).await?;
    Ok(Json(state.store.list_nodes().await?))
}

async fn show_session(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<SessionDetail>> {
    require_auditor(&state, &headers).await?;
    let id: SessionId = id.parse().map_err(|_| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("{id:?} is not a session id"),
        )
    })?;
    state
        .store
        .session(id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("session {id} not found")))
}

/// An exec or attach session's recording (asciicast v2), checked against
/// the SHA-256 its result event holds before it is served.
async fn recording(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path((id, seq)): Path<(String, u64)>,
) -> ApiResult<axum::response::Response> {
    require_auditor(&state, &headers).await?;
    let sid: SessionId = id.parse().map_err(|_| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("{id:?} is not a session id"),
        )
    })?;
    let detail = state
        .store
        .session(sid)
        .await?
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("session {sid} not found")))?;
    let stream = detail
        .statements
        .iter()
        .find(|s| s.seq == seq)
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("session {sid} has no action #{seq}")))?
        .exchange
        .as_ref()
        .and_then(|x| x.stream.as_ref())
        .filter(|s| s.recording.is_some())
        .ok_or_else(|| {
            ApiError(
                StatusCode::NOT_FOUND,
                format!("action #{seq} of session {sid} has no recording (only exec and attach are recorded)"),
            )
        })?;
    let (Some(name), Some(want)) = (&stream.recording, &stream.recording_sha256) else {
        return Err(ApiError(StatusCode::NOT_FOUND, "no recording".into()));
    };
    // The name was written by the gateway; a path inside it is refused all the same.
    if name.contains('/') || name.starts_with('.') {
        return Err(ApiError(
            StatusCode::CONFLICT,
            format!("the recording's name {name:?} is not a file name"),
        ));
    }
    // This node's file, or (made on another node sharing the store) the
    // copy in the store.
    let bytes = match tokio::fs::read(state.recordings.join(name)).await {
        Ok(b) => b,
        Err(e) => state.store.recording(name).await?.ok_or_else(|| {
            ApiError(
                StatusCode::NOT_FOUND,
                format!(
                    "the recording {name} cannot be read: {e}; no node copied it to a shared store"
                ),
            )
        })?,
    };
    use sha2::Digest;
    let got = hex::encode(sha2::Sha256::digest(&bytes));
    if &got != want {
        return Err(ApiError(
            StatusCode::CONFLICT,
            format!("the recording {name} has changed since it was written: its SHA-256 is {got}, the evidence log holds {want}"),
        ));
    }
    Ok(([(header::CONTENT_TYPE, "application/x-asciicast")], bytes).into_response())
}

async fn reload_policy(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> ApiResult<Json<PolicyReloaded>> {
    require_admin(&state, &headers)?;
    let handle = state.policy.clone();
    let result =
        tokio::task::spawn_blocking(move || handle.reload().map(|e| (e, handle.generation())))
            .await
            .map_err(|e| {
                ApiError(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("reload task failed: {e}"),
                )
            })?;
    match result {
        Ok((engine, generation)) => {
            tracing::info!(
                generation,
                policies = engine.policy_count(),
                "policy reloaded through the API"
            );
            state
                .audit
                .append(vec![policy_event("reload", &state.policy)])
                .await?;
            Ok(Json(PolicyReloaded {
                generation,
                files: PolicyFileSummary::of(&engine),
            }))
        }
        Err(problems) => {
            tracing::warn!(%problems, "policy reload rejected; the previous policy stays in force");
            Err(ApiError(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("the new policy is invalid, the previous one stays in force:\n{problems}"),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_openapi_description_is_valid_json_with_every_path() {
        let doc: serde_json::Value = serde_json::from_str(super::OPENAPI).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let paths = doc["paths"].as_object().unwrap();
        // Every $ref points at a defined component.
        let text = super::OPENAPI;
        for r in text.split("\"$ref\": \"#/components/").skip(1) {
            let target = r.split('"').next().unwrap();
            let (kind, name) = target.split_once('/').unwrap();
            assert!(
                doc["components"][kind][name].is_object(),
                "dangling $ref {target}"
            );
        }
        assert_eq!(paths.len(), 25, "one entry per route of `router`");
    }
}
