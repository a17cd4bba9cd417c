//! The startup handshake: TLS on request, the startup packet, the token as
//! the password, then the core's login sequence (`gatehouse_session`), the
//! startup settings decided, and the backend reached with the gateway's own
//! credentials.

use crate::backend::{self, BackendError, BackendTarget};
use crate::codec::backend::{auth_cleartext_password, negotiate_protocol_version};
use crate::codec::frontend::parse_password;
use crate::codec::startup::{parse_startup_packet, StartupPacket, MAX_STARTUP_LEN};
use crate::gate::functions::FunctionNames;
use crate::gate::{self, Gate, GateSettings};
use crate::io::read_message;
use crate::refusals::{self, ConnectionRefusal};
use crate::stream::PgStream;
use crate::Inner;
use bytes::BytesMut;
use gatehouse_core::{Identity, Protocol};
use gatehouse_session::{Admitted, Credential, Knock, LoginAttempt, LoginRefusal, SessionDetails};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Largest password message (an OIDC JWT can be a few KiB).
const MAX_PASSWORD_MESSAGE: u32 = 16 * 1024;

type Params = Vec<(String, String)>;

/// How a handshake ended.
pub(crate) enum Handshake {
    /// The client only wanted to cancel a query, or went away.
    Done,
    /// The client is refused with this error.
    Refused(PgStream, ConnectionRefusal),
    /// A session is established.
    Session(Box<Established>),
}

/// A logged-in client with its backend reached: what the session starts from.
pub(crate) struct Established {
    pub(crate) client: PgStream,
    pub(crate) client_leftover: BytesMut,
    pub(crate) admitted: Admitted,
    pub(crate) details: SessionDetails,
    pub(crate) target: Arc<BackendTarget>,
    pub(crate) backend: backend::BackendSession,
    /// The connection's functions a qualified name can call.
    pub(crate) function_names: Arc<FunctionNames>,
}

/// The handshake of one client, up to an established session.
pub(crate) async fn handshake(inner: &Inner, stream: PgStream, peer: SocketAddr) -> Handshake {
    let (mut stream, startup) = match negotiate(inner, stream).await {
        Ok(Some(started)) => started,
        Ok(None) => return Handshake::Done,
        Err((Some(stream), refusal)) => return Handshake::Refused(stream, refusal),
        Err((None, refusal)) => {
            tracing::info!(client = %peer, reason = %refusal.message, "connection dropped");
            return Handshake::Done;
        }
    };
    match login(inner, &mut stream, peer, &startup).await {
        Ok(Some(e)) => Handshake::Session(Box::new(Established {
            client: stream,
            client_leftover: e.leftover,
            admitted: e.admitted,
            details: e.details,
            target: e.target,
            backend: e.backend,
            function_names: e.function_names,
        })),
        Ok(None) => Handshake::Done,
        Err(refusal) => Handshake::Refused(stream, refusal),
    }
}

/// The StartupMessage: protocol minor version and parameters.
pub(crate) struct Startup {
    minor: u16,
    params: Params,
}

impl Startup {
    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads startup packets until a StartupMessage, upgrading to TLS on
/// request and answering cancel requests.
pub(crate) async fn negotiate(
    inner: &Inner,
    mut stream: PgStream,
) -> Result<Option<(PgStream, Startup)>, (Option<PgStream>, ConnectionRefusal)> {
    loop {
        let body = match read_startup(&mut stream).await {
            Ok(Some(b)) => b,
            Ok(None) => return Ok(None),
            Err(r) => return Err((Some(stream), r)),
        };
        let packet = match parse_startup_packet(&body) {
            Ok(p) => p,
            Err(e) => return Err((Some(stream), refusals::invalid_startup_packet(e))),
        };
        match packet {
            StartupPacket::SslRequest => {
                let mut tcp = match stream {
                    PgStream::Plain(tcp) => tcp,
                    other => return Err((Some(other), refusals::ssl_request_inside_tls())),
                };
                if let Err(e) = tcp.write_all(b"S").await {
                    return Err((None, refusals::connection_error(e)));
                }
                // read_startup reads exactly one packet, so no plaintext bytes can be
                // smuggled in ahead of the TLS handshake.
                match inner.acceptor.accept(tcp).await {
                    Ok(tls) => stream = PgStream::ServerTls(Box::new(tls)),
                    Err(e) => return Err((None, refusals::tls_handshake_failed(e))),
                }
            }
            StartupPacket::GssEncRequest => {
                if let Err(e) = crate::io::send(&mut stream, b"N").await {
                    return Err((None, refusals::connection_error(e)));
                }
            }
            StartupPacket::Cancel { pid, secret } => {
                inner.cancels.cancel(pid, secret).await;
                return Ok(None);
            }
            StartupPacket::Startup { minor, params } => {
                return Ok(Some((stream, Startup { minor, params })))
            }
        }
    }
}

/// What the login hands the session.
struct LoggedIn {
    leftover: BytesMut,
    admitted: Admitted,
    details: SessionDetails,
    target: Arc<BackendTarget>,
    backend: backend::BackendSession,
    function_names: Arc<FunctionNames>,
}

/// Checks transport and token on the core's login sequence, decides the
/// startup settings and logs in to the backend.
async fn login(
    inner: &Inner,
    stream: &mut PgStream,
    peer: SocketAddr,
    startup: &Startup,
) -> Result<Option<LoggedIn>, ConnectionRefusal> {
    let gatekeeper = &inner.gatekeeper;
    let client_user = startup.param("user").unwrap_or_default().to_string();
    let dbname = startup
        .param("database")
        .map_or_else(|| client_user.clone(), str::to_string);
    let target = inner.settings.connections.get(&dbname).cloned();
    let attempt = LoginAttempt {
        protocol: Protocol::Postgres,
        peer,
        encrypted: stream.is_tls(),
        connection: Some(&dbname),
        kind: target.as_ref().map(|_| "postgres"),
    };
    // The transport first: no password is asked for over a connection that may not carry one.
    let knock = gatekeeper
        .knock(attempt)
        .await
        .map_err(|r| refusals::login(&r))?;
    if startup
        .params
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("replication"))
    {
        return Err(refusals::replication_unsupported());
    }
    let Some((password, leftover)) = ask_password(stream, startup).await? else {
        return Ok(None);
    };
    let checked = gatekeeper
        .login(&knock, Credential::Token(&password))
        .await
        .map_err(|r| refusals::login(&r))?;
    let Some(target) = target else {
        // The login sequence refuses a connection of unknown kind.
        return Err(refusals::login(
            &gatehouse_session::LoginRefusal::UnknownConnection {
                name: dbname.clone(),
            },
        ));
    };
    // Startup settings are decided like the SETs they amount to.
    let forwarded = match startup_settings(
        &inner.settings.gate,
        startup,
        checked.identity(),
        &target,
        &knock,
    ) {
        Ok(f) => f,
        Err(Denied::Invalid(reason)) => {
            let r = checked
                .refuse("setting", format!("gatehouse: {reason}"))
                .await;
            return Err(match r {
                LoginRefusal::EvidenceUnavailable => refusals::login(&r),
                _ => refusals::startup_setting_invalid(&reason),
            });
        }
        Err(Denied::Policy(message)) => {
            let r = checked.refuse("setting", message).await;
            return Err(refusals::login(&r));
        }
    };
    // Write-ahead: the login is in the evidence log before the backend sees it.
    // What the evidence log keeps of them is masked like a SET statement's text.
    let recorded = recorded_settings(inner, &target, &forwarded);
    let admitted = checked
        .with_settings(recorded)
        .admit()
        .await
        .map_err(|r| refusals::login(&r))?;
    let mut backend = backend::connect(&target, &forwarded).await.map_err(|e| {
        tracing::warn!(connection = %target.name, error = %e, "backend connection failed");
        refusals::backend_failed(matches!(e, BackendError::Unreachable { .. }), e)
    })?;
    let function_names = function_names(&inner.settings.gate, &target, &mut backend).await?;
    Ok(Some(LoggedIn {
        leftover,
        admitted,
        details: SessionDetails {
            client_user,
            application_name: startup.param("application_name").map(str::to_string),
        },
        target,
        backend,
        function_names,
    }))
}

/// Asks for the password (the caller's token) and reads it, with what the
/// client sent after it. `None`: the client went away.
async fn ask_password(
    stream: &mut PgStream,
    startup: &Startup,
) -> Result<Option<(String, BytesMut)>, ConnectionRefusal> {
    let mut out = BytesMut::with_capacity(256);
    if startup.minor > 0 {
        let unknown: Vec<&str> = startup
            .params
            .iter()
            .filter(|(k, _)| k.starts_with("_pq_."))
            .map(|(k, _)| k.as_str())
            .collect();
        negotiate_protocol_version(&mut out, 0, &unknown);
    }
    auth_cleartext_password(&mut out);
    crate::io::send(stream, &out)
        .await
        .map_err(refusals::connection_error)?;
    let mut buf = BytesMut::with_capacity(1024);
    let msg = read_message(stream, &mut buf, MAX_PASSWORD_MESSAGE)
        .await
        .map_err(refusals::invalid_auth_message)?;
    let Some((ty, body)) = msg else {
        return Ok(None);
    };
    if ty != b'p' {
        return Err(refusals::expected_password(ty));
    }
    let password = parse_password(&body).map_err(refusals::invalid_password_message)?;
    Ok(Some((password.to_string(), buf)))
}

/// The connection's functions a qualified name can call: the shared list
/// when it is fresh, else read now through this session's backend login.
/// A list that cannot be read refuses the session (fail closed).
async fn function_names(
    gate: &GateSettings,
    target: &BackendTarget,
    backend: &mut backend::BackendSession,
) -> Result<Arc<FunctionNames>, ConnectionRefusal> {
    if let Some(names) = gate.functions.current(&target.name) {
        return Ok(names);
    }
    let rows = backend::first_column(
        &mut backend.stream,
        &mut backend.leftover,
        gate::functions::FUNCTIONS_QUERY,
    )
    .await
    .map_err(|e| {
        tracing::warn!(connection = %target.name, error = %e, "could not read the backend's functions");
        refusals::functions_unreadable(e)
    })?;
    let names = Arc::new(FunctionNames::from_rows(rows));
    gate.functions.store(&target.name, names.clone());
    Ok(names)
}

/// Reads one untyped startup packet, exactly (never more bytes than it holds).
async fn read_startup(stream: &mut PgStream) -> Result<Option<Vec<u8>>, ConnectionRefusal> {
    let mut len = [0u8; 4];
    match stream.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(refusals::connection_error(e)),
    }
    let len = u32::from_be_bytes(len) as usize;
    if !(8..=MAX_STARTUP_LEN).contains(&len) {
        return Err(refusals::startup_packet_length(len));
    }
    let mut body = vec![0u8; len - 4];
    stream
        .read_exact(&mut body)
        .await
        .map_err(refusals::connection_error)?;
    Ok(Some(body))
}

/// Why a startup setting is not passed on.
enum Denied {
    /// It cannot be passed on at all (a login key, a malformed name).
    Invalid(String),
    /// The policy refuses the SET it amounts to (what the caller is told).
    Policy(String),
}

/// The startup parameters passed to the backend: the pinned settings, the
/// harmless ones, and those the policy allows as the `SET` they amount to.
fn startup_settings(
    gate_settings: &GateSettings,
    startup: &Startup,
    identity: &Identity,
    target: &BackendTarget,
    knock: &Knock<'_>,
) -> Result<Params, Denied> {
    let sorted = gate::settings::StartupSettings::sort(&startup.params).map_err(Denied::Invalid)?;
    let mut forwarded = sorted.forwarded;
    if sorted.to_decide.is_empty() {
        return Ok(forwarded);
    }
    // No session yet, so no approvals: a startup setting that needs approval
    // is refused, and no request is filed for a login that cannot wait for it.
    let mut gate = Gate::new(
        gate_settings.clone(),
        identity.clone(),
        target.name.clone(),
        knock.attempt().peer.ip(),
    );
    for (name, value) in sorted.to_decide {
        let sql = gate::settings::as_set_statement(&name, &value);
        let (verdict, _) = gate.decide_text(&sql, gate::Flavour::Simple);
        if verdict.refusal.is_some() || verdict.hold.is_some() {
            let reason = verdict.record.reason.unwrap_or_default();
            let by = if verdict.record.policies.is_empty() {
                String::new()
            } else {
                format!(" (policy {})", verdict.record.policies.join(", "))
            };
            return Err(Denied::Policy(format!(
                "gatehouse: permission denied: startup setting {name}: {reason}{by}"
            )));
        }
        forwarded.push((name, value));
    }
    Ok(forwarded)
}

/// The startup settings as the login's event keeps them: values masked by
/// the connection's masking (or the secrets detectors), as a `SET`
/// statement's text is in its record.
fn recorded_settings(
    inner: &Inner,
    target: &BackendTarget,
    settings: &[(String, String)],
) -> Vec<(String, String)> {
    let engine = match inner.settings.masking.get(&target.name) {
        Some(m) => m.engine(),
        None => &inner.settings.record_masking,
    };
    let mut scratch = gatehouse_mask::Scratch::default();
    let mut tally = gatehouse_mask::MaskTally::default();
    settings
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                engine.mask_str(v, &mut scratch, &mut tally).into_owned(),
            )
        })
        .collect()
}
