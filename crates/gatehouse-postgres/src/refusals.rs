//! Every error the gateway itself sends a PostgreSQL client, as a named
//! constructor: the SQLSTATE, what happened and what to do next, in one
//! place. A `ConnectionRefusal` ends the connection (FATAL); a
//! `StatementRefusal` takes a refused statement's place in the stream and
//! the session goes on (ERROR).

use crate::codec::backend::{error_response, ErrorNotice};
use crate::ending::Ending;
use crate::stream::PgStream;
use bytes::BytesMut;
use gatehouse_core::{SessionEndReason, StartError};
use gatehouse_session::LoginRefusal;

/// A connection refused before its session started: sent as a FATAL
/// ErrorResponse, then the connection is closed.
#[derive(Debug)]
pub(crate) struct ConnectionRefusal {
    pub(crate) code: &'static str,
    pub(crate) message: String,
    pub(crate) hint: Option<&'static str>,
}

impl ConnectionRefusal {
    fn new(code: &'static str, message: impl Into<String>, hint: Option<&'static str>) -> Self {
        Self {
            code,
            message: message.into(),
            hint,
        }
    }

    /// The FATAL ErrorResponse.
    pub(crate) fn message(&self) -> BytesMut {
        fatal(self.code, &self.message, None, self.hint)
    }
}

/// Sends `r` as a FATAL error and closes the connection (best effort: the
/// client may be gone).
pub(crate) async fn send(stream: &mut PgStream, r: &ConnectionRefusal) {
    use tokio::io::AsyncWriteExt;
    let _ = crate::io::send(stream, &r.message()).await;
    let _ = stream.shutdown().await;
}

const TRY_LATER: &str = "try again later; if it persists, ask the gateway's operator";
const OPERATOR_TOLD: &str = "try again later; the gateway's operator has been told in its logs";

/// A FATAL ErrorResponse.
pub(crate) fn fatal(
    code: &str,
    message: &str,
    detail: Option<&str>,
    hint: Option<&str>,
) -> BytesMut {
    let mut out = BytesMut::new();
    error_response(
        &mut out,
        &ErrorNotice {
            severity: "FATAL",
            code,
            message,
            detail,
            hint,
        },
    );
    out
}

// === Before the login ===

pub(crate) fn invalid_startup_packet(reason: impl std::fmt::Display) -> ConnectionRefusal {
    ConnectionRefusal::new("08P01", format!("invalid startup packet: {reason}"), None)
}

pub(crate) fn startup_packet_length(len: usize) -> ConnectionRefusal {
    ConnectionRefusal::new(
        "08P01",
        format!("invalid startup packet length {len}"),
        None,
    )
}

pub(crate) fn ssl_request_inside_tls() -> ConnectionRefusal {
    ConnectionRefusal::new("08P01", "SSLRequest received inside TLS", None)
}

pub(crate) fn tls_handshake_failed(e: impl std::fmt::Display) -> ConnectionRefusal {
    ConnectionRefusal::new("08P01", format!("TLS handshake failed: {e}"), None)
}

pub(crate) fn connection_error(e: std::io::Error) -> ConnectionRefusal {
    ConnectionRefusal::new("08006", format!("connection error: {e}"), None)
}

pub(crate) fn replication_unsupported() -> ConnectionRefusal {
    ConnectionRefusal::new(
        "0A000",
        "replication connections are not supported through gatehouse",
        None,
    )
}

pub(crate) fn invalid_auth_message(e: impl std::fmt::Display) -> ConnectionRefusal {
    ConnectionRefusal::new(
        "08P01",
        format!("invalid message during authentication: {e}"),
        None,
    )
}

pub(crate) fn expected_password(ty: u8) -> ConnectionRefusal {
    ConnectionRefusal::new(
        "08P01",
        format!("expected a password message, got {:?}", ty as char),
        None,
    )
}

pub(crate) fn invalid_password_message(e: impl std::fmt::Display) -> ConnectionRefusal {
    ConnectionRefusal::new("08P01", format!("invalid password message: {e}"), None)
}

/// More connections than `[limits] max_connections` at once.
pub(crate) fn over_capacity(max: u32) -> ConnectionRefusal {
    ConnectionRefusal::new(
        "53300",
        format!(
            "gatehouse has {max} client connections open, its limit ([limits] max_connections)"
        ),
        Some("try again in a moment"),
    )
}

// === The login ===

/// The login sequence's refusal, in PostgreSQL's words.
pub(crate) fn login(r: &LoginRefusal) -> ConnectionRefusal {
    let message = r.message();
    match r {
        LoginRefusal::TlsRequired => ConnectionRefusal::new(
            "28000",
            "gatehouse requires TLS",
            Some("connect with sslmode=require (or verify-full with the gateway's CA certificate)"),
        ),
        // Only SSH presents keys; to PostgreSQL it is a missing password.
        LoginRefusal::MissingCredential | LoginRefusal::UnknownKey => ConnectionRefusal::new(
            "28P01",
            message,
            Some("use a token from `gatehouse token create`, or an OIDC token from a trusted issuer, as the password"),
        ),
        LoginRefusal::BadCredential { jwt: true, .. } => ConnectionRefusal::new(
            "28P01",
            message,
            Some("use a current token from your platform (GitHub Actions, Entra ID, GitLab, Kubernetes…) with the audience the gateway expects; `gatehouse identity inspect` shows what the gateway makes of a token"),
        ),
        LoginRefusal::BadCredential { jwt: false, .. } => ConnectionRefusal::new(
            "28P01",
            message,
            Some("use a token from `gatehouse token create`, or an OIDC token from a trusted issuer, as the password"),
        ),
        LoginRefusal::UnknownConnection { .. } => ConnectionRefusal::new(
            "3D000",
            message,
            Some("set dbname to the name of a [[connection]] in the gateway's configuration"),
        ),
        LoginRefusal::ConnectDenied { .. } => ConnectionRefusal::new(
            "28000",
            message,
            Some("ask the gateway's operator for a policy that permits this identity to connect"),
        ),
        LoginRefusal::TooManyFailures { .. } => ConnectionRefusal::new(
            "53400",
            message,
            Some("wait a minute, then log in with a valid token; the gateway's operator can raise [limits] failed_logins_per_minute"),
        ),
        LoginRefusal::TooManySessions { .. } => ConnectionRefusal::new(
            "53300",
            message,
            Some("close a session first, or ask the gateway's operator to raise the limit"),
        ),
        LoginRefusal::Refused { .. } => ConnectionRefusal::new(
            "42501",
            message,
            Some("a startup setting (also one in options=-c …) is decided like the SET statement it amounts to; connect without it"),
        ),
        LoginRefusal::EvidenceUnavailable => evidence_unavailable(),
    }
}

/// A startup setting the gateway cannot pass on at all.
pub(crate) fn startup_setting_invalid(reason: &str) -> ConnectionRefusal {
    ConnectionRefusal::new(
        "22023",
        format!("gatehouse: {reason}"),
        Some("connect without that startup setting, or set it with SET once connected"),
    )
}

/// The evidence log cannot take an event, so the connection is not opened.
pub(crate) fn evidence_unavailable() -> ConnectionRefusal {
    ConnectionRefusal::new(
        "58030",
        "gatehouse could not write its evidence log, so the connection was not opened",
        Some(OPERATOR_TOLD),
    )
}

/// The session's start could not be recorded.
pub(crate) fn session_unrecorded(e: &StartError) -> ConnectionRefusal {
    match e {
        StartError::Audit(_) => evidence_unavailable(),
        StartError::Store(_) => ConnectionRefusal::new(
            "58000",
            "the gateway could not record this session, so it was not opened",
            Some(OPERATOR_TOLD),
        ),
    }
}

// === The backend ===

/// The backend login failed (`unreachable`: not even reached).
pub(crate) fn backend_failed(unreachable: bool, e: impl std::fmt::Display) -> ConnectionRefusal {
    let code = if unreachable { "08006" } else { "08004" };
    ConnectionRefusal::new(code, e.to_string(), Some(TRY_LATER))
}

pub(crate) fn functions_unreadable(e: impl std::fmt::Display) -> ConnectionRefusal {
    ConnectionRefusal::new(
        "08004",
        format!("the gateway could not read the database's functions, so it cannot decide qualified names: {e}"),
        Some(TRY_LATER),
    )
}

pub(crate) fn settings_not_pinned(reason: &str) -> ConnectionRefusal {
    ConnectionRefusal::new(
        "08004",
        format!("the database did not take the gateway's pinned settings: {reason}"),
        Some("tell the gateway's operator: the backend server overrides client_encoding or standard_conforming_strings"),
    )
}

// === A session the gateway ends ===

/// Why the gateway ended a session, for the client, if it is the gateway's
/// doing (`None`: the client or the backend ended it, or the network).
pub(crate) fn session_ended(ending: &Ending) -> Option<BytesMut> {
    let detail = ending.detail.as_deref();
    Some(match ending.reason {
        SessionEndReason::ProtocolError => fatal(
            "08P01",
            &format!(
                "gatehouse closed the connection: {}",
                detail.unwrap_or("invalid message")
            ),
            None,
            Some("this is a client or driver bug; the connection cannot continue"),
        ),
        SessionEndReason::GatewayShutdown => fatal(
            "57P01",
            "the gateway is shutting down",
            None,
            Some("reconnect in a moment"),
        ),
        SessionEndReason::EvidenceLogFailed => fatal(
            "58030",
            "gatehouse could not write its evidence log, so the statement was not run",
            detail,
            Some("nothing was sent to the database; reconnect later, and tell the gateway's operator"),
        ),
        SessionEndReason::LimitExceeded => fatal(
            "54000",
            "gatehouse closed the connection: a message exceeded its limit",
            detail,
            Some(
                "send less in one message (split a large statement or parameter), or ask the \
                 gateway's operator to raise [limits] max_message_size",
            ),
        ),
        SessionEndReason::PinnedSettingChanged => fatal(
            "42501",
            "gatehouse closed the session: a setting it reads statements under was changed",
            detail,
            Some(
                "client_encoding stays UTF8 and standard_conforming_strings on through the \
                 gateway; reconnect, and do not change them (also not from inside a function)",
            ),
        ),
        SessionEndReason::ClientDisconnected
        | SessionEndReason::NetworkError
        | SessionEndReason::ClientTerminated
        | SessionEndReason::BackendClosed
        // Written by another node for a node that fell silent, never an
        // ending a live session has.
        | SessionEndReason::NodeLost => return None,
    })
}

/// A result row masking would have to hold whole beyond the limit.
pub(crate) fn row_too_large(detail: &str) -> BytesMut {
    fatal(
        "54000",
        &format!("gatehouse closed the connection: {detail}"),
        None,
        Some("select less in one row, or ask the gateway's operator to raise the limit"),
    )
}

/// The backend's stream broke (`detail`: how).
pub(crate) fn backend_broke(detail: &str) -> BytesMut {
    fatal(
        "08P01",
        &format!("gatehouse closed the connection: the {detail}"),
        None,
        Some("no part of the message was relayed; reconnect, and tell the gateway's operator if it recurs"),
    )
}

mod statement;
pub(crate) use statement::*;
