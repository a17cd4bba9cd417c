//! Signing in to the console with a token (a service token, an OIDC token,
//! or the admin key), signing out, and who is signed in.

use super::sign_ins::SecretText;
use super::{cookie, same_origin, COOKIE};
use crate::caller::{caller, identify, Caller, Roles};
use crate::routes::{ApiError, ApiResult, ApiState};
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use gatehouse_core::{AuditEvent, AuthAttempt};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// Body of `POST /ui/api/sign-in`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignInRequest {
    token: String,
}

/// Who is signed in, with what they may do and the CSRF value the page
/// sends with every change.
#[derive(Serialize)]
pub(crate) struct SignedIn {
    subject: String,
    groups: Vec<String>,
    roles: Roles,
    csrf: String,
}

fn attempt(addr: &str) -> AuthAttempt<'_> {
    AuthAttempt {
        protocol: "console",
        client_addr: addr,
        connection: None,
    }
}

fn set_cookie(value: &str, max_age: u64) -> HeaderValue {
    super::set_cookie(COOKIE, value, "Strict", max_age)
}

/// `POST /ui/api/sign-in`: checks the token as the API would, records the
/// sign-in in the evidence log, and sets the sign-in's cookie.
pub(crate) async fn sign_in(
    State(state): State<ApiState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Json<SignInRequest>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Response> {
    if !same_origin(&headers) {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            "sign-in from another site's page refused".into(),
        ));
    }
    let Json(req) = body.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))?;
    let token = req.token.trim();
    let addr = addr.ip().to_string();
    if token.is_empty() || HeaderValue::from_str(token).is_err() || token.len() > 16 * 1024 {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "paste a Gatehouse token (gh_…), an OIDC token, or the admin key".into(),
        ));
    }
    let who = match identify(&state, token).await {
        Ok(who) => who,
        Err(e) => {
            refused(&state, &addr, &e.1).await?;
            return Err(e);
        }
    };
    let (cookie, csrf) = start(&state, &addr, &who, token).await?;
    let mut res = Json(signed_in(&state, &who, csrf)).into_response();
    res.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(res)
}

/// Records a sign-in of `who` (by `credential`, from `addr`) in the
/// evidence log and starts it: the cookie to set, and its CSRF value.
pub(crate) async fn start(
    state: &ApiState,
    addr: &str,
    who: &Caller,
    credential: &str,
) -> ApiResult<(HeaderValue, String)> {
    let event = match who {
        Caller::Identity(i) => AuditEvent::auth_success(&attempt(addr), i),
        Caller::Admin => AuditEvent::auth_success(
            &attempt(addr),
            &gatehouse_core::Identity::with_service_token("admin", Vec::new(), "admin-key"),
        ),
    };
    // Recorded before it works: a sign-in the log does not know never exists.
    state.audit.append(vec![event]).await?;
    let (cookie_value, csrf) = state.console.sign_ins.start(
        SecretText::new(credential.to_string()),
        who.subject().to_string(),
    );
    tracing::info!(client = %addr, subject = who.subject(), "console sign-in");
    let max_age = state.console.sign_ins.lifetime().absolute.as_secs();
    Ok((set_cookie(&cookie_value, max_age), csrf))
}

/// Records a refused sign-in.
pub(crate) async fn refused(state: &ApiState, addr: &str, reason: &str) -> ApiResult<()> {
    let event = AuditEvent::auth_failure(&attempt(addr), None, "credential", reason);
    state.audit.append(vec![event]).await?;
    tracing::info!(client = %addr, %reason, "console sign-in refused");
    Ok(())
}

fn signed_in(state: &ApiState, who: &Caller, csrf: String) -> SignedIn {
    SignedIn {
        subject: who.subject().to_string(),
        groups: match who {
            Caller::Identity(i) => i.groups.clone(),
            Caller::Admin => Vec::new(),
        },
        roles: who.roles(state),
        csrf,
    }
}

/// `POST /ui/api/sign-out`: ends the sign-in (its CSRF value was checked
/// on the way in) and clears the cookie.
pub(crate) async fn sign_out(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    if let Some(c) = cookie(&headers, COOKIE) {
        state.console.sign_ins.end(c);
    }
    let mut res = StatusCode::NO_CONTENT.into_response();
    res.headers_mut()
        .insert(header::SET_COOKIE, set_cookie("", 0));
    res
}

/// `GET /ui/api/me`: who the sign-in is, re-checked (a revoked token ends
/// its sign-ins here).
pub(crate) async fn me(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> ApiResult<Json<SignedIn>> {
    let Some(sign_in) =
        cookie(&headers, COOKIE).and_then(|c| state.console.sign_ins.find(c, false))
    else {
        return Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "not signed in (or the sign-in ended): sign in again".into(),
        ));
    };
    // The credential is re-checked: a revoked or expired one answers 401.
    let who = caller(&state, &headers).await?;
    Ok(Json(signed_in(&state, &who, sign_in.csrf)))
}
