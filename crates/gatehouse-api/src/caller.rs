//! Who is calling the API: the admin (the admin key), or an identity by its
//! service or OIDC token, sent as `Authorization: Bearer …` by the CLI and
//! scripts, or held by a console sign-in (see [`crate::console`]).

use crate::routes::{ApiError, ApiResult, ApiState};
use axum::http::{header, HeaderMap, StatusCode};
use gatehouse_core::{Identity, Timestamp};

/// Who is calling.
pub(crate) enum Caller {
    /// The admin key: reads everything, administers, decides no approval.
    Admin,
    /// An identity, by its own credential.
    Identity(Identity),
}

/// What a caller may do besides what every identity may.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Roles {
    /// The admin key.
    pub admin: bool,
    /// Approves some route: reads every request, decides its routes' requests.
    pub approver: bool,
    /// Reads sessions, recordings, the evidence log and the access review
    /// (`[console] auditors`); the admin does too.
    pub auditor: bool,
}

pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// The caller, or 401 saying what to send.
pub(crate) async fn caller(state: &ApiState, headers: &HeaderMap) -> ApiResult<Caller> {
    let Some(presented) = bearer(headers) else {
        return Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "missing credentials: send `Authorization: Bearer <your Gatehouse token>` (approvers, auditors) or the admin key, or sign in to the console at /ui/".into(),
        ));
    };
    identify(state, presented).await
}

/// The caller a credential names.
pub(crate) async fn identify(state: &ApiState, presented: &str) -> ApiResult<Caller> {
    if state.admin_key.matches(presented) {
        return Ok(Caller::Admin);
    }
    state
        .authenticator
        .authenticate(presented, Timestamp::now())
        .await
        .map(|a| Caller::Identity(a.into_identity()))
        .map_err(|e| ApiError(StatusCode::UNAUTHORIZED, e.to_string()))
}

impl Caller {
    /// What this caller may do.
    pub(crate) fn roles(&self, state: &ApiState) -> Roles {
        match self {
            Caller::Admin => Roles {
                admin: true,
                approver: false,
                auditor: true,
            },
            Caller::Identity(i) => Roles {
                admin: false,
                approver: state.approvals.is_approver(i),
                auditor: i.groups.iter().any(|g| state.console.auditors.contains(g)),
            },
        }
    }

    /// The name shown for this caller.
    pub(crate) fn subject(&self) -> &str {
        match self {
            Caller::Admin => "admin",
            Caller::Identity(i) => &i.subject,
        }
    }
}

/// The admin, or an identity in one of `[console] auditors`' groups: who
/// may read sessions, recordings and the evidence.
pub(crate) async fn require_auditor(state: &ApiState, headers: &HeaderMap) -> ApiResult<Caller> {
    let who = caller(state, headers).await?;
    if who.roles(state).auditor {
        return Ok(who);
    }
    Err(ApiError(
        StatusCode::FORBIDDEN,
        format!(
            "{} may not read sessions or evidence: that needs the admin key or membership of a group the gateway's [console] auditors names; ask its operator",
            who.subject(),
        ),
    ))
}
