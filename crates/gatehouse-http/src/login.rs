//! Who is calling: the bearer token checked (or taken again on a kept-alive
//! connection), the connect policy decided and the session opened, with
//! every refusal logged durably first.

use crate::listener::HttpGateway;
use crate::refusals::{self, Problem};
use crate::session::CallerConnection;
use crate::HttpTarget;
use gatehouse_core::SessionEndReason;
use gatehouse_session::{Credential, LoginAttempt, LoginRefusal, Session, SessionDetails};
use http::header;

/// Authenticates the caller and finds or opens its session.
pub(crate) async fn login(
    gw: &HttpGateway,
    caller: &CallerConnection,
    target: &HttpTarget,
    headers: &http::HeaderMap,
) -> Result<Session, Problem> {
    let gatekeeper = &gw.gatekeeper;
    let attempt = LoginAttempt {
        protocol: target.dialect.protocol(),
        peer: caller.peer,
        encrypted: caller.encrypted,
        connection: Some(&target.name),
        kind: Some(target.dialect.kind()),
    };
    let knock = gatekeeper.knock(attempt).await.map_err(|r| problem(&r))?;
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .filter(|t| !t.is_empty());
    // A credential checked on this connection in the last seconds is taken
    // as proven; only a fresh check starts a new reuse window (so a revoked
    // token is refused within the window however often it is sent).
    let (credential, fresh) = match token {
        None => (Credential::Missing, None),
        Some(t) => match caller.recently_checked(t) {
            Some(identity) => (Credential::Proven(identity), None),
            None => (Credential::Token(t), Some(t)),
        },
    };
    let identity = gatekeeper
        .identify(&knock, credential)
        .await
        .map_err(|r| problem(&r))?;
    if let Some(t) = fresh {
        caller.remember_check(t, &identity);
    }
    if let Some(open) = caller.current(&identity, &target.name) {
        return Ok(open);
    }
    let checked = gatekeeper
        .check(&knock, identity)
        .await
        .map_err(|r| problem(&r))?;
    // One session at a time per caller connection: the other one ends once
    // the new one may open (a refused switch leaves it as it was).
    caller
        .end(
            SessionEndReason::ClientTerminated,
            Some("the caller switched identity or connection"),
        )
        .await;
    let admitted = checked.admit().await.map_err(|r| problem(&r))?;
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let details = SessionDetails {
        client_user: String::new(),
        application_name: agent,
    };
    let session = admitted.open(details).await.map_err(|e| {
        tracing::error!(error = %e, "could not record a session start; refusing the request");
        refusals::evidence_unavailable()
    })?;
    caller.opened(session.clone());
    Ok(session)
}

/// The login sequence's refusal as a problem document.
pub(crate) fn problem(r: &LoginRefusal) -> Problem {
    match r {
        LoginRefusal::TlsRequired => refusals::tls_required(),
        // Only SSH presents keys; to HTTP it is a missing credential.
        LoginRefusal::MissingCredential | LoginRefusal::UnknownKey => {
            refusals::missing_credential()
        }
        LoginRefusal::BadCredential { reason, jwt } => refusals::bad_credential(reason, *jwt),
        LoginRefusal::UnknownConnection { name } => refusals::no_connection(Some(name)),
        LoginRefusal::ConnectDenied { reason } => refusals::connect_denied(reason),
        LoginRefusal::TooManySessions { .. } => refusals::too_many_sessions(&r.message()),
        LoginRefusal::TooManyFailures { .. } => refusals::too_many_failed_logins(&r.message()),
        LoginRefusal::Refused { message, .. } => refusals::login_refused(message),
        LoginRefusal::EvidenceUnavailable => refusals::evidence_unavailable(),
    }
}
