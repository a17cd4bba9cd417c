//! SSH credentials: a caller exchanges its token for a short-lived SSH
//! certificate signed by the gateway's CA (`POST /v1/ssh/certificates`,
//! what `gatehouse ssh login` calls); the admin registers a public key to
//! a service identity (`POST /v1/ssh/keys`), managed like a token after.

use crate::routes::{require_admin, ApiError, ApiResult, ApiState, MAX_TTL};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use gatehouse_core::{AuditEvent, Timestamp, TokenRecord};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Body of `POST /v1/ssh/certificates`.
#[derive(Debug, Serialize, Deserialize)]
pub struct CertificateRequest {
    /// The caller's fresh public key (`ssh-ed25519 AAAA…`).
    pub public_key: String,
}

/// Answer of `POST /v1/ssh/certificates`.
#[derive(Debug, Serialize, Deserialize)]
pub struct IssuedCertificate {
    /// The certificate, for `<key>-cert.pub`.
    pub certificate: String,
    /// Its serial.
    pub serial: String,
    /// Its principal (the identity's subject).
    pub principal: String,
    /// When it stops being valid.
    pub valid_before: Timestamp,
}

/// Body of `POST /v1/ssh/keys`.
#[derive(Debug, Serialize, Deserialize)]
pub struct RegisterKeyRequest {
    /// The identity the key logs in as.
    pub identity: String,
    /// Its groups.
    #[serde(default)]
    pub groups: Vec<String>,
    /// How long the registration lasts, in seconds.
    pub ttl_seconds: u64,
    /// The public key (`ssh-ed25519 AAAA… comment`).
    pub public_key: String,
}

fn parse_key(text: &str) -> ApiResult<russh::keys::PublicKey> {
    russh::keys::PublicKey::from_openssh(text.trim()).map_err(|e| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("public_key is not an OpenSSH public key line ({e})"),
        )
    })
}

/// Signs a certificate for the caller whose token authorizes the request.
pub(crate) async fn issue(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Result<Json<CertificateRequest>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<(StatusCode, Json<IssuedCertificate>)> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            ApiError(
                StatusCode::UNAUTHORIZED,
                "missing credentials: send `Authorization: Bearer <your Gatehouse or OIDC token>`"
                    .into(),
            )
        })?;
    let identity = state
        .authenticator
        .authenticate(token, Timestamp::now())
        .await
        .map_err(|e| ApiError(StatusCode::UNAUTHORIZED, e.to_string()))?
        .into_identity();
    let Some((ca, ttl)) = state.ssh_ca.clone() else {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            "this gateway has no SSH listener, so it signs no SSH certificates ([listeners] ssh)"
                .into(),
        ));
    };
    let Json(req) = body.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))?;
    let key = parse_key(&req.public_key)?;
    let now = Timestamp::now();
    let issued = ca
        .sign(&identity, &key, ttl, now)
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string()))?;
    // Logged before it is handed out: a certificate the log does not know
    // is never used.
    let fingerprint = gatehouse_ssh::fingerprint(&key);
    state
        .audit
        .append(vec![AuditEvent::ssh_certificate_issued(
            &identity,
            issued.serial,
            &fingerprint,
            issued.valid_before,
        )])
        .await?;
    tracing::info!(identity = %identity.subject, serial = issued.serial, key = %fingerprint, "ssh certificate issued");
    Ok((
        StatusCode::CREATED,
        Json(IssuedCertificate {
            certificate: issued.certificate,
            serial: issued.serial.to_string(),
            principal: issued.principal,
            valid_before: issued.valid_before,
        }),
    ))
}

/// Registers a public key to a service identity.
pub(crate) async fn register(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Result<Json<RegisterKeyRequest>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<(StatusCode, Json<TokenRecord>)> {
    require_admin(&state, &headers)?;
    let Json(req) = body.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))?;
    let ttl = Duration::from_secs(req.ttl_seconds);
    if ttl.is_zero() || ttl > MAX_TTL {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "ttl must be between 1 second and 366 days".into(),
        ));
    }
    let key = parse_key(&req.public_key)?;
    let blob = key
        .to_bytes()
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("public_key: {e}")))?;
    let fingerprint = gatehouse_ssh::fingerprint(&key);
    let record = gatehouse_identity::register_ssh_key(
        &req.identity,
        &req.groups,
        ttl,
        Timestamp::now(),
        &blob,
        &fingerprint,
    )
    .map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string()))?;
    if state.store.find_token(&record.id).await?.is_some() {
        return Err(ApiError(
            StatusCode::CONFLICT,
            format!(
                "the key {fingerprint} was registered already (record {}); a key is registered once, and a revoked one stays revoked: make a new key",
                record.id
            ),
        ));
    }
    state
        .audit
        .append(vec![AuditEvent::token_created(&record)])
        .await?;
    state.store.insert_token(&record).await?;
    tracing::info!(token = %record.id, identity = %record.identity, key = %fingerprint, "ssh key registered");
    Ok((StatusCode::CREATED, Json(record)))
}
