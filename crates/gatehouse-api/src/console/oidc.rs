//! Signing in to the console with the organisation's OIDC provider: the
//! authorization code flow with PKCE (see `gatehouse_identity::oidc::code_flow`).
//! The browser is sent to the provider with a state value that a cookie of
//! its own also holds (so an answer can only finish the sign-in it began),
//! comes back with a code, and the gateway exchanges the code for an ID
//! token, checks it like any token of that issuer (and its nonce), and
//! keeps it as the sign-in's credential: the sign-in ends when it expires.

use super::cookie;
use super::sign_in::{refused, start};
use crate::caller::{identify, Caller};
use crate::routes::ApiState;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use gatehouse_identity::oidc::{code_flow::nonce_of, PendingSignIn};
use serde::Deserialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The cookie binding a sign-in in progress to the browser that began it.
/// `SameSite=Lax`: it must come back on the provider's redirect, a
/// top-level navigation from another site.
const FLOW_COOKIE: &str = "__Host-gatehouse-oidc";
/// How long a person may take at the provider.
const FLOW_TTL: Duration = Duration::from_secs(600);
/// Sign-ins in progress kept at most (the oldest are dropped first).
const MAX_FLOWS: usize = 1000;

/// Sign-ins waiting for the provider's answer, by state.
#[derive(Default)]
pub(crate) struct PendingFlows(Mutex<HashMap<String, (PendingSignIn, Instant)>>);

impl PendingFlows {
    fn put(&self, p: PendingSignIn) -> String {
        let state = p.state.clone();
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, (_, at)| at.elapsed() < FLOW_TTL);
        if map.len() >= MAX_FLOWS {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(state.clone(), (p, Instant::now()));
        state
    }

    /// The sign-in `state` names, once (a second answer finds nothing).
    fn take(&self, state: &str) -> Option<PendingSignIn> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(state)
            .filter(|(_, at)| at.elapsed() < FLOW_TTL)
            .map(|(p, _)| p)
    }
}

/// Back to the sign-in page, saying why.
fn back_with(error: &str) -> Response {
    let q: String = url_encode(error);
    let mut res = Redirect::to(&format!("/ui/#/sign-in?error={q}")).into_response();
    res.headers_mut()
        .insert(header::SET_COOKIE, flow_cookie("", 0));
    res
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn flow_cookie(value: &str, max_age: u64) -> HeaderValue {
    super::set_cookie(FLOW_COOKIE, value, "Lax", max_age)
}

/// `GET /ui/api/options`: what the sign-in page offers.
pub(crate) async fn options(State(state): State<ApiState>) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "oidc": state.console.oidc.as_ref().map(|f| serde_json::json!({"name": f.issuer_name()})),
    }))
}

/// `GET /ui/api/oidc/start`: off to the provider, when the person asked
/// for it on the console's own page (a page of another site cannot start a
/// sign-in that a provider's single sign-on would finish unseen).
pub(crate) async fn begin(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    let Some(flow) = &state.console.oidc else {
        return back_with("this gateway offers no OIDC sign-in ([console.oidc] is not configured)");
    };
    let site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("same-origin");
    if !matches!(site, "same-origin" | "none") {
        return back_with(
            "a sign-in starts from the console's own page: choose the sign-in button there",
        );
    }
    let pending = PendingSignIn::new();
    let url = match flow.authorization_url(&pending).await {
        Ok(u) => u,
        Err(e) => {
            // The details are the operator's: its log has them.
            tracing::warn!(error = %e, "console OIDC sign-in could not start");
            return back_with("the sign-in provider cannot be reached just now; try again, or sign in with a token (the gateway's log says why)");
        }
    };
    let state_value = state.console.flows.put(pending);
    let mut res = Redirect::to(&url).into_response();
    res.headers_mut().insert(
        header::SET_COOKIE,
        flow_cookie(&state_value, FLOW_TTL.as_secs()),
    );
    res
}

/// What the provider sends the browser back with.
#[derive(Deserialize)]
pub(crate) struct Answer {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /ui/api/oidc/callback`: the provider's answer.
pub(crate) async fn callback(
    State(state): State<ApiState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    query: Result<Query<Answer>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let addr = addr.ip().to_string();
    let Some(flow) = &state.console.oidc else {
        return back_with("this gateway offers no OIDC sign-in");
    };
    let Ok(Query(answer)) = query else {
        return back_with("the sign-in provider's answer could not be read; sign in again");
    };
    // The answer must belong to the sign-in this very browser began;
    // nothing else of it is read, recorded or shown before that.
    let Some(state_value) = &answer.state else {
        return back_with("the sign-in provider's answer had no state; sign in again");
    };
    if cookie(&headers, FLOW_COOKIE) != Some(state_value.as_str()) {
        return back_with(
            "this answer belongs to a sign-in this browser did not begin; sign in again",
        );
    }
    let Some(pending) = state.console.flows.take(state_value) else {
        return back_with("the sign-in took too long or was already used; sign in again");
    };
    if let Some(e) = &answer.error {
        let why: String = answer
            .error_description
            .as_deref()
            .unwrap_or(e)
            .chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect();
        let _ = refused(&state, &addr, &format!("the provider refused: {why}")).await;
        return back_with(&format!("the sign-in provider said: {why}"));
    }
    let Some(code) = &answer.code else {
        return back_with("the sign-in provider's answer had no code; sign in again");
    };
    let id_token = match flow.id_token(code, &pending).await {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "console OIDC code exchange failed");
            let _ = refused(&state, &addr, &e).await;
            return back_with(&e);
        }
    };
    let who = match identify(&state, &id_token).await {
        Ok(who) => who,
        Err(e) => {
            let _ = refused(&state, &addr, &e.1).await;
            return back_with(&format!(
                "the provider's ID token was not accepted: {}",
                e.1
            ));
        }
    };
    // An ID token of this provider, for this client: not the admin key, a
    // service token or another issuer's token the endpoint might answer.
    let from_this_provider = match &who {
        Caller::Identity(i) => matches!(
            &i.source,
            gatehouse_core::IdentitySource::Oidc(o) if o.issuer == flow.issuer_name()
        ),
        Caller::Admin => false,
    };
    if !from_this_provider || !flow.issued_to_this_client(&id_token) {
        let _ = refused(
            &state,
            &addr,
            "the token endpoint answered a token not issued to the console",
        )
        .await;
        return back_with(
            "the provider answered a token not issued to this console; sign in again",
        );
    }
    if nonce_of(&id_token).as_deref() != Some(pending.nonce.as_str()) {
        let _ = refused(&state, &addr, "ID token without this sign-in's nonce").await;
        return back_with("the ID token does not carry this sign-in's nonce; sign in again");
    }
    match start(&state, &addr, &who, &id_token).await {
        Ok((cookie_header, _)) => {
            let mut res = Redirect::to("/ui/#/approvals").into_response();
            res.headers_mut().append(header::SET_COOKIE, cookie_header);
            res.headers_mut()
                .append(header::SET_COOKIE, flow_cookie("", 0));
            res
        }
        Err(e) => back_with(&e.1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_sign_in_is_taken_once() {
        let flows = PendingFlows::default();
        let state = flows.put(PendingSignIn::new());
        assert!(flows.take("other").is_none());
        assert!(flows.take(&state).is_some());
        assert!(
            flows.take(&state).is_none(),
            "an answer finishes one sign-in once"
        );
        assert_eq!(url_encode("a b/é"), "a%20b%2F%C3%A9");
    }
}
