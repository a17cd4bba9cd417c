//! The periodic access review: every identity that holds a usable
//! credential, and what the policy in force lets it reach. A sign-off
//! records the review the reviewer saw in the evidence log, so the next
//! evidence pack shows who reviewed what, and when.

use crate::caller::{require_auditor, Caller};
use crate::routes::{ApiError, ApiResult, ApiState, PolicyFileSummary};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use gatehouse_core::{AuditEvent, Identity, Timestamp, TokenId};
use gatehouse_policy::ReachRow;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Answer of `GET /v1/access-review`.
#[derive(Debug, Serialize, Deserialize)]
pub struct AccessReview {
    /// When the review was computed.
    pub generated_at: Timestamp,
    /// The caller address the policies were asked about.
    pub client_ip: IpAddr,
    /// The policy files in force.
    pub policy_files: Vec<PolicyFileSummary>,
    /// Each identity (subject and groups) with a usable credential.
    pub identities: Vec<IdentityAccess>,
    /// SHA-256 of `identities` as JSON: what a sign-off names.
    pub digest: String,
}

/// One identity and what it may reach.
#[derive(Debug, Serialize, Deserialize)]
pub struct IdentityAccess {
    /// The subject.
    pub identity: String,
    /// Its groups (a different set of groups is a different principal).
    pub groups: Vec<String>,
    /// The usable tokens that authenticate as it.
    pub tokens: Vec<TokenAccess>,
    /// What it may do, per connection, table and action.
    pub reach: Vec<ReachRow>,
}

/// A credential behind an identity.
#[derive(Debug, Serialize, Deserialize)]
pub struct TokenAccess {
    /// The token's public id.
    pub id: TokenId,
    /// When it stops working.
    pub expires_at: Timestamp,
}

/// Query of `GET /v1/access-review`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewQuery {
    /// Ask the policies about a caller at this address (default 127.0.0.1).
    pub client_ip: Option<IpAddr>,
}

/// Body of `POST /v1/access-review/sign-off`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignOffRequest {
    /// Who performed the review (an auditor signing with their own
    /// credential signs as themselves and may leave it empty).
    #[serde(default)]
    pub reviewer: String,
    /// What they concluded, if anything.
    #[serde(default)]
    pub notes: String,
    /// The digest of the review the reviewer read; the sign-off is refused
    /// if access changed since (they would be signing something unseen).
    pub digest: Option<String>,
    /// As in the query.
    pub client_ip: Option<IpAddr>,
}

/// Answer of a sign-off.
#[derive(Debug, Serialize, Deserialize)]
pub struct SignedOff {
    /// The review that was recorded.
    pub review: AccessReview,
    /// Who signed it off.
    pub reviewer: String,
}

const DEFAULT_IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

/// Computes the review from the store's tokens and the policy in force.
async fn compute(state: &ApiState, client_ip: IpAddr) -> ApiResult<AccessReview> {
    let now = Timestamp::now();
    let tokens = state.store.list_tokens().await?;
    let mut by_principal: BTreeMap<(String, Vec<String>), Vec<TokenAccess>> = BTreeMap::new();
    for t in tokens.into_iter().filter(|t| t.is_usable_at(now)) {
        let mut groups = t.groups.clone();
        groups.sort();
        groups.dedup();
        by_principal
            .entry((t.identity.clone(), groups))
            .or_default()
            .push(TokenAccess {
                id: t.id,
                expires_at: t.expires_at,
            });
    }
    let (engine, _) = state.policy.current();
    let policy_files = PolicyFileSummary::of(&engine);
    let connections = state.connections.clone();
    // Cedar evaluation for every identity, table and action is CPU work:
    // off the async workers.
    let identities = tokio::task::spawn_blocking(move || {
        by_principal
            .into_iter()
            .map(|((identity, groups), tokens)| {
                let principal =
                    Identity::with_service_token(identity.clone(), groups.clone(), "access-review");
                IdentityAccess {
                    reach: engine.reach(&principal, &connections, client_ip, now),
                    identity,
                    groups,
                    tokens,
                }
            })
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|e| {
        ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("access review: {e}"),
        )
    })?;
    let digest = match serde_json::to_vec(&identities) {
        Ok(bytes) => hex::encode(Sha256::digest(bytes)),
        Err(e) => return Err(ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    };
    Ok(AccessReview {
        generated_at: now,
        client_ip,
        policy_files,
        identities,
        digest,
    })
}

pub(crate) async fn show(
    State(state): State<ApiState>,
    headers: HeaderMap,
    query: Result<Query<ReviewQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<AccessReview>> {
    require_auditor(&state, &headers).await?;
    let Query(q) = query.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))?;
    Ok(Json(
        compute(&state, q.client_ip.unwrap_or(DEFAULT_IP)).await?,
    ))
}

pub(crate) async fn sign_off(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Result<Json<SignOffRequest>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<SignedOff>> {
    let who = require_auditor(&state, &headers).await?;
    let Json(req) = body.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))?;
    // An auditor signs as themselves; the admin key names the reviewer.
    let reviewer = match &who {
        Caller::Identity(i) => {
            let named = req.reviewer.trim();
            if !named.is_empty() && named != i.subject {
                return Err(ApiError(
                    StatusCode::FORBIDDEN,
                    format!(
                        "{} signs off as themselves, not as {named:?}; leave reviewer empty or name yourself",
                        i.subject
                    ),
                ));
            }
            i.subject.as_str()
        }
        Caller::Admin => req.reviewer.trim(),
    };
    if reviewer.is_empty() || reviewer.len() > 200 || reviewer.contains(char::is_control) {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "reviewer must name the person who performed the review (1-200 printable characters)"
                .into(),
        ));
    }
    if req.notes.len() > 10_000 {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "notes are limited to 10000 bytes; attach longer findings to your ticket".into(),
        ));
    }
    let review = compute(&state, req.client_ip.unwrap_or(DEFAULT_IP)).await?;
    if let Some(seen) = &req.digest {
        if !seen.eq_ignore_ascii_case(&review.digest) {
            return Err(ApiError(
                StatusCode::CONFLICT,
                format!(
                    "access changed since the review you read (digest {seen}, now {}); \
                     look at the review again and sign off what it shows now",
                    review.digest
                ),
            ));
        }
    }
    let listing = serde_json::to_value(&review.identities)
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    // Durable before the reviewer is told it is recorded.
    state
        .audit
        .append(vec![AuditEvent::access_review(
            reviewer,
            &req.notes,
            &review.digest,
            listing,
        )])
        .await?;
    tracing::info!(reviewer, digest = %review.digest, identities = review.identities.len(), "access review signed off");
    Ok(Json(SignedOff {
        reviewer: reviewer.to_string(),
        review,
    }))
}
