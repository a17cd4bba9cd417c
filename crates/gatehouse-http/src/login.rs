//! Who is calling: the bearer token checked (or taken again on a kept-alive
//! connection), the connect policy decided and the session opened, with
//! every refusal logged durably first.

use crate::listener::HttpGateway;
use crate::refusals::{self, Problem};
use crate::session::{CallerConnection, OpenSession};
use crate::HttpTarget;
use gatehouse_core::Timestamp;
use gatehouse_identity::CredentialKind;
use http::header;
use std::sync::Arc;

/// Authenticates the caller and finds or opens its session.
pub(crate) async fn login(
    gw: &HttpGateway,
    caller: &CallerConnection,
    target: &HttpTarget,
    headers: &http::HeaderMap,
) -> Result<Arc<OpenSession>, Problem> {
    let s = &gw.settings;
    let conn = Some(target.name.as_str());
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        let p = refusals::missing_credential();
        return Err(auth_refusal(caller, conn, None, "credential", p).await);
    };
    let identity = match caller.recently_checked(token) {
        Some(identity) => Ok(identity),
        None => s
            .authenticator
            .authenticate(token, Timestamp::now())
            .await
            .map(|i| {
                let identity = i.into_identity();
                caller.remember_check(token, &identity);
                identity
            }),
    };
    let identity = match identity {
        Ok(i) => i,
        Err(e) => {
            let jwt = CredentialKind::of(token) == CredentialKind::Jwt;
            let p = refusals::bad_credential(&e.to_string(), jwt);
            return Err(auth_refusal(caller, conn, None, "credential", p).await);
        }
    };
    if let Some(open) = caller.current(&identity, &target.name) {
        return Ok(open);
    }
    let (engine, _) = s.policy.current();
    let decision = engine.decide_connect(&gatehouse_policy::ConnectRequest {
        identity: &identity,
        connection: &target.name,
        kind: target.dialect.kind(),
        client_ip: caller.peer.ip(),
        now: Timestamp::now(),
    });
    if let (Some(reason), gatehouse_policy::PolicyMode::Enforce) =
        (decision.reason(), s.policy.mode())
    {
        let p = refusals::connect_denied(reason);
        let subject = Some(identity.subject.as_str());
        return Err(auth_refusal(caller, conn, subject, "policy", p).await);
    }
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    caller
        .open(identity, &target.name, target.dialect.protocol(), agent)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "could not record a session start; refusing the request");
            refusals::evidence_unavailable()
        })
}

async fn auth_refusal(
    caller: &CallerConnection,
    connection: Option<&str>,
    subject: Option<&str>,
    stage: &str,
    p: Problem,
) -> Problem {
    if caller
        .auth_failed(connection, subject, stage, &p.detail)
        .await
    {
        p
    } else {
        refusals::evidence_unavailable()
    }
}
