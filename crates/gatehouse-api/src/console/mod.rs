//! The web console: pages for approvers and auditors, served under `/ui/`
//! by the API listener, built into the binary (nothing is fetched at run
//! time). The pages are a client of the same `/v1` API the CLI uses: a
//! sign-in keeps the caller's credential on the server, and a browser
//! request carrying the sign-in's cookie is answered as if it carried that
//! credential, after its CSRF value is checked. The API decides what each
//! caller may see and do, exactly as for the CLI.

mod assets;
mod oidc;
mod sign_in;
mod sign_ins;

pub use sign_ins::SignInLifetime;

use crate::routes::{ApiError, ApiState};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use sign_ins::SignIns;

/// The cookie naming a sign-in. `__Host-`: the browser keeps it only when
/// it is `Secure`, for this host alone and for every path.
pub(crate) const COOKIE: &str = "__Host-gatehouse-console";
/// The header every state-changing console request carries.
pub(crate) const CSRF_HEADER: &str = "x-gatehouse-csrf";
/// Sent by a page's own polls: not a person's activity, so it does not keep
/// an idle sign-in alive.
pub(crate) const BACKGROUND_HEADER: &str = "x-gatehouse-background";

/// What `[console]` configures.
#[derive(Debug, Clone)]
pub struct ConsoleSettings {
    /// Whether `/ui/` serves the console (`auditors` apply to the API
    /// either way).
    pub enabled: bool,
    /// Groups whose members read sessions, recordings, the evidence log and
    /// the access review (through the console or with their own token).
    pub auditors: Vec<String>,
    /// How long sign-ins last.
    pub lifetime: SignInLifetime,
    /// Sign-in with the organisation's OIDC provider (`[console.oidc]`).
    pub oidc: Option<std::sync::Arc<gatehouse_identity::oidc::CodeFlow>>,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            auditors: Vec::new(),
            lifetime: SignInLifetime::default(),
            oidc: None,
        }
    }
}

/// The console's state: its settings and who is signed in.
pub struct Console {
    pub(crate) enabled: bool,
    pub(crate) auditors: Vec<String>,
    pub(crate) sign_ins: SignIns,
    pub(crate) oidc: Option<std::sync::Arc<gatehouse_identity::oidc::CodeFlow>>,
    pub(crate) flows: oidc::PendingFlows,
}

impl Console {
    /// A console with no one signed in.
    pub fn new(settings: ConsoleSettings) -> Self {
        Self {
            enabled: settings.enabled,
            auditors: settings.auditors,
            sign_ins: SignIns::new(settings.lifetime),
            oidc: settings.oidc,
            flows: oidc::PendingFlows::default(),
        }
    }
}

/// The console's routes: its pages and assets, and its sign-in endpoints
/// (each answering 404 when `[console] enabled = false`).
pub(crate) fn routes(state: &ApiState) -> Router<ApiState> {
    let router = Router::new()
        .route(
            "/ui",
            get(|| async { axum::response::Redirect::permanent("/ui/") }),
        )
        .route("/ui/", get(assets::index))
        .route("/ui/assets/{name}", get(assets::asset))
        .route("/ui/api/sign-in", post(sign_in::sign_in))
        .route("/ui/api/sign-out", post(sign_in::sign_out))
        .route("/ui/api/me", get(sign_in::me))
        .route("/ui/api/options", get(oidc::options))
        .route("/ui/api/oidc/start", get(oidc::begin))
        .route("/ui/api/oidc/callback", get(oidc::callback));
    if state.console.enabled {
        return router;
    }
    Router::new().route(
        "/ui/{*rest}",
        axum::routing::any(|| async {
            ApiError(
                StatusCode::NOT_FOUND,
                "the web console is turned off on this gateway ([console] enabled = false)".into(),
            )
        }),
    )
}

/// A `Set-Cookie` for one of the console's `__Host-` cookies (HttpOnly,
/// Secure, for this host and every path); an empty value with `max_age` 0
/// clears it. Values are hex or base64url: always a valid header.
pub(crate) fn set_cookie(name: &str, value: &str, same_site: &str, max_age: u64) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; Secure; SameSite={same_site}; Max-Age={max_age}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("__Host-gatehouse-console=; Path=/; Max-Age=0"))
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether the request's `Origin`, when it sends one, is this very server
/// (as its `Host` names it): a page of another site cannot pass.
pub(crate) fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|o| o.eq_ignore_ascii_case(host))
}

fn safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// A browser request carrying a sign-in's cookie (and no credential of its
/// own) is answered as if it carried the sign-in's credential, once its
/// CSRF value and origin are checked when it changes anything. A cookie of
/// no live sign-in is ignored: the API then answers 401 and the console
/// asks to sign in again.
pub(crate) async fn signed_in_requests(
    State(state): State<ApiState>,
    mut req: Request,
    next: Next,
) -> Response {
    if req.headers().contains_key(header::AUTHORIZATION) {
        return next.run(req).await;
    }
    let activity = !req.headers().contains_key(BACKGROUND_HEADER);
    let Some(sign_in) =
        cookie(req.headers(), COOKIE).and_then(|c| state.console.sign_ins.find(c, activity))
    else {
        return next.run(req).await;
    };
    if !safe(req.method()) {
        let presented = req
            .headers()
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !sign_in.csrf_matches(presented) || !same_origin(req.headers()) {
            return ApiError(
                StatusCode::FORBIDDEN,
                "this request came without the console's CSRF value (X-Gatehouse-CSRF) or from another site's page, so it was refused; reload the console and try again".into(),
            )
            .into_response();
        }
    }
    let Ok(mut value) = HeaderValue::from_str(&format!("Bearer {}", sign_in.credential.expose()))
    else {
        // Credentials are checked to be header-safe at sign-in.
        return next.run(req).await;
    };
    value.set_sensitive(true);
    req.headers_mut().insert(header::AUTHORIZATION, value);
    next.run(req).await
}

/// Headers on every answer: no sniffing, no framing, no referrer, nothing
/// cached, and scripts and styles only from the gateway's own files.
pub(crate) async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_and_origins_are_read_as_browsers_send_them() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; __Host-gatehouse-console=abc ;b=2"),
        );
        assert_eq!(cookie(&h, COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "c"), None);
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8089"));
        assert!(
            same_origin(&h),
            "no Origin: not a cross-site browser request"
        );
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8089"),
        );
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(!same_origin(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(!same_origin(&h));
    }
}
