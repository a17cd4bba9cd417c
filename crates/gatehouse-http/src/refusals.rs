//! Every answer the gateway itself gives a caller: an RFC 9457 problem
//! document (`application/problem+json`) saying what happened and what to
//! do next. One named constructor per refusal.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use serde_json::{json, Value};

/// The body type of every response the gateway sends.
pub(crate) type Body = BoxBody<Bytes, std::io::Error>;

/// A refusal: status, a short title, the detail, and what to do.
#[derive(Debug, Clone)]
pub(crate) struct Problem {
    pub(crate) status: StatusCode,
    pub(crate) title: &'static str,
    pub(crate) detail: String,
    pub(crate) hint: Option<String>,
    /// Extra members (`request_id`, `policies`).
    pub(crate) extra: Vec<(&'static str, Value)>,
}

impl Problem {
    fn new(status: StatusCode, title: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            title,
            detail: detail.into(),
            hint: None,
            extra: Vec::new(),
        }
    }

    fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    fn with(mut self, key: &'static str, value: Value) -> Self {
        self.extra.push((key, value));
        self
    }

    /// The HTTP response.
    pub(crate) fn response(&self) -> Response<Body> {
        let mut doc = json!({
            "type": "about:blank",
            "title": self.title,
            "status": self.status.as_u16(),
            "detail": self.detail,
        });
        if let Value::Object(m) = &mut doc {
            if let Some(h) = &self.hint {
                m.insert("hint".into(), h.clone().into());
            }
            for (k, v) in &self.extra {
                m.insert((*k).into(), v.clone());
            }
        }
        let mut r = Response::new(full(doc.to_string()));
        *r.status_mut() = self.status;
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"gatehouse\""),
            );
        }
        r
    }

    /// What the record keeps of it: `"<status>"` and the detail.
    pub(crate) fn code(&self) -> String {
        self.status.as_u16().to_string()
    }
}

/// A whole body of bytes.
pub(crate) fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

pub(crate) fn tls_required() -> Problem {
    Problem::new(
        StatusCode::FORBIDDEN,
        "TLS required",
        "gatehouse accepts plaintext HTTP only from loopback addresses",
    )
    .hint("use https:// with the gateway's CA certificate")
}

pub(crate) fn bad_path(reason: &str) -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "Path refused",
        format!("gatehouse: {reason}"),
    )
    .hint("send the path as the upstream should read it, without dot segments, encoded slashes or path parameters")
}

pub(crate) fn no_connection(prefix: Option<&str>) -> Problem {
    let detail = match prefix {
        Some(p) => format!("connection \"{p}\" is not configured on this gateway"),
        None => "the request names no connection".to_string(),
    };
    Problem::new(StatusCode::NOT_FOUND, "Unknown connection", detail)
        .hint("start the path with the name of an http [[connection]]: https://gateway/<connection>/<path>")
}

pub(crate) fn missing_credential() -> Problem {
    Problem::new(
        StatusCode::UNAUTHORIZED,
        "Authentication required",
        "no bearer token: send Authorization: Bearer <token>",
    )
    .hint("use a token from `gatehouse token create`, or an OIDC token from a trusted issuer")
}

pub(crate) fn bad_credential(reason: &str, jwt: bool) -> Problem {
    let hint = if jwt {
        "use a current token from your platform with the audience the gateway expects; `gatehouse identity inspect` shows what the gateway makes of a token"
    } else {
        "use a token from `gatehouse token create`, or an OIDC token from a trusted issuer"
    };
    Problem::new(
        StatusCode::UNAUTHORIZED,
        "Authentication failed",
        format!("authentication failed: {reason}"),
    )
    .hint(hint)
}

pub(crate) fn connect_denied(reason: &str) -> Problem {
    Problem::new(
        StatusCode::FORBIDDEN,
        "Permission denied",
        format!("gatehouse: permission denied: {reason}"),
    )
    .hint("ask the gateway's operator for a policy that permits this identity to connect")
}

pub(crate) fn upgrade_refused() -> Problem {
    Problem::new(
        StatusCode::NOT_IMPLEMENTED,
        "Upgrade not supported",
        "gatehouse does not forward protocol upgrades (WebSocket) on http connections",
    )
}

pub(crate) fn body_too_large(limit: usize) -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "Request body too large",
        format!("the request body is over {limit} bytes, the most the gateway reads to decide a request ([limits] max_message_size)"),
    )
    .hint("send a smaller body, or ask the gateway's operator to raise the limit")
}

pub(crate) fn bad_body(reason: &str) -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "Request body unreadable",
        format!("gatehouse could not read the request body: {reason}"),
    )
}

pub(crate) fn bad_message(reason: &str) -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "Message refused",
        format!("gatehouse: {reason}"),
    )
}

pub(crate) fn not_an_mcp_endpoint(connection: &str) -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "Not an MCP endpoint",
        format!("connection {connection} is an MCP server: its endpoint is /{connection} itself"),
    )
    .hint("point the MCP client at https://gateway/<connection>")
}

pub(crate) fn unknown_mcp_session() -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "Session not found",
        "gatehouse: this MCP session id was not opened by this identity through the gateway",
    )
    .hint("start a new session (initialize) through the gateway")
}

pub(crate) fn method_not_allowed(method: &str) -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "Method not allowed",
        format!("an MCP endpoint takes POST, GET and DELETE, not {method}"),
    )
}

pub(crate) fn denied(reason: &str, policies: &[String]) -> Problem {
    Problem::new(
        StatusCode::FORBIDDEN,
        "Permission denied",
        format!("gatehouse: permission denied: {reason}"),
    )
    .with("policies", json!(policies))
    .hint("ask the gateway's operator for a policy that permits this request")
}

pub(crate) fn approval_required(
    reason: &str,
    id: &str,
    approvers: &[String],
    valid_for: &str,
) -> Problem {
    Problem::new(
        StatusCode::FORBIDDEN,
        "Approval required",
        format!("gatehouse: approval required: {reason}: request {id}"),
    )
    .with("request_id", json!(id))
    .with("approvers", json!(approvers))
    .hint(format!(
        "ask an approver to run `gatehouse approvals approve {id}`; once approved, send exactly this request again (within {valid_for}) and it runs once"
    ))
}

pub(crate) fn approval_outcome(id: &str, denied: bool, expired: bool) -> Problem {
    let (title, detail, hint) = if denied {
        (
            "Approval denied",
            format!("gatehouse: approval denied: request {id}"),
            format!("an approver denied it; `gatehouse approvals show {id}` says who and why"),
        )
    } else if expired {
        (
            "Approval expired",
            format!("gatehouse: approval request {id} expired undecided"),
            "send the request again to file a new one".to_string(),
        )
    } else {
        (
            "Approval pending",
            format!("gatehouse: the request waited for approval and was not decided in time: request {id}"),
            format!("the request stays pending; once `gatehouse approvals approve {id}` is done, send exactly this request again and it runs once"),
        )
    };
    Problem::new(StatusCode::FORBIDDEN, title, detail)
        .with("request_id", json!(id))
        .hint(hint)
}

pub(crate) fn too_many_requests(reason: &str) -> Problem {
    Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many approval requests",
        format!("gatehouse: approval required, and no request filed: {reason}"),
    )
    .hint("wait a minute, or ask the gateway's operator to raise [limits] approval_requests_per_minute")
}

/// The identity has as many sessions open as it may (`detail` says so).
pub(crate) fn too_many_sessions(detail: &str) -> Problem {
    Problem::new(StatusCode::TOO_MANY_REQUESTS, "Too many sessions", detail)
        .hint("close another connection first, or ask the gateway's operator to raise [limits] max_sessions_per_identity")
}

/// The caller's address failed to log in too often this minute.
pub(crate) fn too_many_failed_logins(detail: &str) -> Problem {
    Problem::new(StatusCode::TOO_MANY_REQUESTS, "Too many failed logins", detail)
        .hint("wait a minute, then send a valid token; the gateway's operator can raise [limits] failed_logins_per_minute")
}

/// A login refused for a reason stated in full (`message`).
pub(crate) fn login_refused(message: &str) -> Problem {
    Problem::new(StatusCode::FORBIDDEN, "Permission denied", message)
        .hint("ask the gateway's operator")
}

pub(crate) fn too_many_pending(reason: &str) -> Problem {
    Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many pending approval requests",
        format!("gatehouse: approval required, and no request filed: {reason}"),
    )
    .hint("wait for your pending requests to be decided or to expire, or ask the gateway's operator to raise [limits] max_pending_approvals_per_identity")
}

pub(crate) fn evidence_unavailable() -> Problem {
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "Evidence log unavailable",
        "gatehouse could not record the request, so it was not forwarded",
    )
    .hint("try again later; if it persists, ask the gateway's operator")
}

pub(crate) fn upstream_protocol(connection: &str, upgrade: &str) -> Problem {
    Problem::new(
        StatusCode::BAD_GATEWAY,
        "Unknown protocol",
        format!("gatehouse: the upstream of connection {connection} switched to {upgrade:?}, which the gateway cannot read to record; the stream was not opened"),
    )
    .hint("ask the gateway's operator")
}

pub(crate) fn upgrade_not_relayed(what: &str) -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "Upgrade refused",
        format!("gatehouse: {what}"),
    )
    .hint("exec, attach and port-forward are relayed over WebSocket or SPDY/3.1; other requests are plain HTTP")
}

pub(crate) fn upstream_unreachable(connection: &str, reason: &str) -> Problem {
    Problem::new(
        StatusCode::BAD_GATEWAY,
        "Upstream unreachable",
        format!("gatehouse could not reach the upstream of connection {connection}: {reason}"),
    )
    .hint("try again later; if it persists, ask the gateway's operator")
}

pub(crate) fn upstream_timeout(connection: &str) -> Problem {
    Problem::new(
        StatusCode::GATEWAY_TIMEOUT,
        "Upstream timeout",
        format!("the upstream of connection {connection} did not answer in time"),
    )
}

pub(crate) fn unmaskable(connection: &str, reason: &str) -> Problem {
    Problem::new(
        StatusCode::BAD_GATEWAY,
        "Response withheld",
        format!("gatehouse withheld the response of connection {connection}: masking applies and {reason}"),
    )
    .hint("ask for JSON or text, without compression other than gzip or deflate; or ask the gateway's operator")
}

pub(crate) fn impersonation_refused(header: &str) -> Problem {
    Problem::new(
        StatusCode::FORBIDDEN,
        "Impersonation refused",
        format!("gatehouse: the {header} header is refused: on this connection the gateway alone says who is calling"),
    )
    .hint("send the request without Impersonate-* headers (kubectl --as / --as-group); the gateway's operator can set impersonate = true to have the API server see your identity")
}

pub(crate) fn recording_unavailable() -> Problem {
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "Recording unavailable",
        "gatehouse could not start the session's recording, so the stream was not opened",
    )
    .hint("try again later; if it persists, ask the gateway's operator (its log says why)")
}
