//! Approval requests over the API. Approvers authenticate with their own
//! Gatehouse service token (the decision is theirs, by name, and the route
//! checks their groups); the admin key may list and read, never decide.
//! Other identities read only their own requests.

use crate::caller::{caller, Caller};
use crate::routes::{ApiError, ApiResult, ApiState};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use gatehouse_core::{
    ApprovalError, ApprovalId, ApprovalMode, ApprovalRequest, ApprovalState, VoteRefused,
};
use serde::{Deserialize, Serialize};

/// Query of `GET /v1/approvals`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalFilter {
    /// Only requests in this state (`pending`, `approved`, `denied`, `expired`, `used`).
    pub state: Option<ApprovalState>,
    /// At most this many (default 100).
    pub limit: Option<u32>,
}

/// Body of `POST /v1/approvals/{id}/approve` and `/deny`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoteRequest {
    /// Why (required to deny).
    #[serde(default)]
    pub comment: String,
}

/// Answer of `POST /v1/approvals/{id}/approve` and `/deny`: the request as
/// decided, and how its route makes the statement wait (hold: the statement
/// waits in its session and runs there once approved; request: the caller
/// runs it again).
#[derive(Debug, Serialize, Deserialize)]
pub struct Decided {
    /// The request after the vote.
    #[serde(flatten)]
    pub request: ApprovalRequest,
    /// The route's mode, when the route is still configured.
    pub mode: Option<ApprovalMode>,
}

fn desk_error(e: ApprovalError) -> ApiError {
    match e {
        ApprovalError::NotFound(_) => ApiError(StatusCode::NOT_FOUND, e.to_string()),
        ApprovalError::Refused(VoteRefused::NotPending(..)) => {
            ApiError(StatusCode::CONFLICT, e.to_string())
        }
        ApprovalError::Refused(VoteRefused::DenialWithoutComment) => {
            ApiError(StatusCode::BAD_REQUEST, e.to_string())
        }
        ApprovalError::Refused(_) => ApiError(StatusCode::FORBIDDEN, e.to_string()),
        ApprovalError::UnknownRoute(..)
        | ApprovalError::AlreadyUsed(_)
        | ApprovalError::Conflict(_) => ApiError(StatusCode::CONFLICT, e.to_string()),
        ApprovalError::Store(s) => s.into(),
        ApprovalError::Audit(a) => a.into(),
    }
}

pub(crate) async fn list(
    State(state): State<ApiState>,
    headers: HeaderMap,
    query: Result<Query<ApprovalFilter>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Vec<ApprovalRequest>>> {
    let who = caller(&state, &headers).await?;
    let Query(f) = query.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))?;
    let limit = f.limit.unwrap_or(100).clamp(1, 10_000);
    let mut list = state
        .approvals
        .list(f.state, limit)
        .await
        .map_err(desk_error)?;
    // Approvers and the admin read every request; others their own.
    if let Caller::Identity(i) = &who {
        if !state.approvals.is_approver(i) {
            list.retain(|r| r.requester.subject == i.subject);
        }
    }
    Ok(Json(list))
}

pub(crate) async fn show(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<ApprovalRequest>> {
    let who = caller(&state, &headers).await?;
    let r = state
        .approvals
        .get(&ApprovalId(id))
        .await
        .map_err(desk_error)?;
    if let Caller::Identity(i) = &who {
        if !state.approvals.is_approver(i) && r.requester.subject != i.subject {
            return Err(ApiError(
                StatusCode::FORBIDDEN,
                format!(
                    "{} may read only their own requests: request {} is not theirs and they approve no route",
                    i.subject, r.id
                ),
            ));
        }
    }
    Ok(Json(r))
}

async fn vote(
    state: ApiState,
    headers: HeaderMap,
    id: String,
    body: Result<Json<VoteRequest>, axum::extract::rejection::JsonRejection>,
    approve: bool,
) -> ApiResult<Json<Decided>> {
    let voter = match caller(&state, &headers).await? {
        Caller::Identity(i) => i,
        Caller::Admin => {
            return Err(ApiError(
                StatusCode::FORBIDDEN,
                "the admin key cannot decide approvals: an approver decides with their own Gatehouse token (--token or GATEHOUSE_TOKEN)".into(),
            ))
        }
    };
    let comment = match body {
        Ok(Json(b)) => b.comment,
        Err(axum::extract::rejection::JsonRejection::MissingJsonContentType(_)) => String::new(),
        Err(e) => return Err(ApiError(StatusCode::BAD_REQUEST, e.body_text())),
    };
    let r = state
        .approvals
        .vote(&ApprovalId(id), &voter, approve, &comment)
        .await
        .map_err(desk_error)?;
    tracing::info!(request = %r.id, approver = %voter.subject, approve, state = r.state.as_str(), "approval decided");
    let mode = state.approvals.route(&r.route).map(|route| route.mode);
    Ok(Json(Decided { request: r, mode }))
}

pub(crate) async fn approve(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Json<VoteRequest>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<Decided>> {
    vote(state, headers, id, body, true).await
}

pub(crate) async fn deny(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Json<VoteRequest>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<Decided>> {
    vote(state, headers, id, body, false).await
}
