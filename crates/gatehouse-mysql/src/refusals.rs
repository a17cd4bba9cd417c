//! Every error a caller sees from the gateway, as a MySQL ERR packet with
//! an error number and SQLSTATE clients already handle, and a message that
//! says why and what to do next.

use crate::codec::result::Err;
use gatehouse_session::gate::Refusal;
use gatehouse_session::LoginRefusal;

/// `ER_ACCESS_DENIED_ERROR`: a refused login.
const ACCESS_DENIED: u16 = 1045;
/// `ER_BAD_DB_ERROR`: no such connection.
const BAD_DB: u16 = 1049;
/// `ER_SPECIFIC_ACCESS_DENIED_ERROR`: a refused statement.
const SPECIFIC_ACCESS_DENIED: u16 = 1227;
/// `ER_PARSE_ERROR`: a statement the gateway could not analyse.
const PARSE_ERROR: u16 = 1064;
/// `ER_UNKNOWN_COM_ERROR`: a command the gateway does not pass.
const UNKNOWN_COM: u16 = 1047;
/// `ER_UNKNOWN_ERROR`: the gateway itself failed.
const UNKNOWN_ERROR: u16 = 1105;
/// `ER_NET_PACKET_TOO_LARGE`.
const PACKET_TOO_LARGE: u16 = 1153;

fn err(code: u16, sqlstate: &str, message: String) -> Err {
    Err {
        code,
        sqlstate: sqlstate.into(),
        message,
    }
}

/// A login the core's login sequence refused.
pub(crate) fn login(refusal: &LoginRefusal) -> Err {
    match refusal {
        LoginRefusal::UnknownConnection { name } => err(
            BAD_DB,
            "42000",
            format!(
                "gatehouse: connection \"{name}\" is not configured on this gateway: pass a \
                 configured mysql connection's name as the database (or, without a database, \
                 as the user name)"
            ),
        ),
        LoginRefusal::TlsRequired => err(
            ACCESS_DENIED,
            "28000",
            "gatehouse requires TLS: connect with --ssl (mariadb) or --ssl-mode=REQUIRED \
             (mysql), or your driver's TLS option"
                .into(),
        ),
        LoginRefusal::MissingCredential => err(
            ACCESS_DENIED,
            "28000",
            "gatehouse: no token was presented: pass your Gatehouse or OIDC token as the \
             password (the client must allow mysql_clear_password: mysql \
             --enable-cleartext-plugin; MariaDB clients allow it)"
                .into(),
        ),
        LoginRefusal::EvidenceUnavailable => err(UNKNOWN_ERROR, "HY000", refusal.message()),
        other => err(
            ACCESS_DENIED,
            "28000",
            format!(
                "gatehouse: {}",
                other.message().trim_start_matches("gatehouse: ")
            ),
        ),
    }
}

/// The backend could not be reached or refused the gateway's login.
pub(crate) fn backend_unavailable(connection: &str) -> Err {
    err(
        UNKNOWN_ERROR,
        "08S01",
        format!(
            "gatehouse could not log in to the database of connection {connection}; the \
             gateway's log says why. Try again later or ask its operator"
        ),
    )
}

/// The session's start could not be recorded.
pub(crate) fn session_not_recorded() -> Err {
    err(
        UNKNOWN_ERROR,
        "HY000",
        "gatehouse could not record the session's start, so it was not opened".into(),
    )
}

/// The gateway's decision refused a statement.
pub(crate) fn refused(refusal: &Refusal) -> Err {
    match refusal {
        Refusal::EvidenceUnavailable => err(UNKNOWN_ERROR, "HY000", refusal.message()),
        _ => err(
            SPECIFIC_ACCESS_DENIED,
            "42000",
            format!("gatehouse: {}", refusal.message()),
        ),
    }
}

/// A statement the analysis could not read exactly as the server would.
pub(crate) fn unanalysable(reason: &str) -> Err {
    err(
        PARSE_ERROR,
        "42000",
        format!(
            "gatehouse: {reason}; the gateway refuses what it cannot analyse, so nothing was run"
        ),
    )
}

/// A command the gateway never passes.
pub(crate) fn command(name: &str, why: &str) -> Err {
    err(
        UNKNOWN_COM,
        "08S01",
        format!("gatehouse: {name} is refused: {why}"),
    )
}

/// A message longer than the gateway accepts.
pub(crate) fn too_large(limit: usize) -> Err {
    err(
        PACKET_TOO_LARGE,
        "08S01",
        format!("gatehouse: a message of more than {limit} bytes ([limits] max_message_size)"),
    )
}

/// A denial the gateway itself words (not the policy's).
pub(crate) fn denied(reason: &str) -> Err {
    err(
        SPECIFIC_ACCESS_DENIED,
        "42000",
        format!("gatehouse: permission denied: {reason}"),
    )
}
