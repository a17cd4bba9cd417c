//! The PostgreSQL listener: accepts connections, runs the startup handshake
//! (TLS, token authentication, connection choice), opens the backend leg,
//! records the session and hands over to the relay.

use crate::backend::{self, BackendError, BackendTarget};
use crate::cancel::CancelRegistry;
use crate::codec::backend::{
    auth_cleartext_password, auth_ok, backend_key_data, error_response, negotiate_protocol_version,
    ErrorNotice,
};
use crate::codec::frontend::parse_password;
use crate::codec::startup::{parse_startup_packet, StartupPacket, MAX_STARTUP_LEN};
use crate::gate::functions::FunctionNames;
use crate::gate::{self, Gate, GateSettings};
use crate::io::read_message;
use crate::limits::{Occupancy, SessionLimits, SessionSlot};
use crate::mask::{ConnectionMasking, SessionMasking};
use crate::relay::{self, Counters};
use crate::stream::PgStream;
use crate::tracker::Tracker;
use bytes::{BufMut, BytesMut};
use gatehouse_core::{
    AuditEvent, AuthAttempt, SessionEnd, SessionId, SessionRecorder, SessionStart, StartError,
    Timestamp,
};
use gatehouse_identity::{AuthenticatedIdentity, Authenticator, CredentialKind};
use gatehouse_mask::MaskingEngine;
use gatehouse_policy::{ConnectRequest, Decision, PolicyMode};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

/// How long a connection over the limit may take to say what it wants
/// before it is closed.
const OVER_CAPACITY_HANDSHAKE: Duration = Duration::from_secs(5);
/// Largest password message (an OIDC JWT can be a few KiB).
const MAX_PASSWORD_MESSAGE: u32 = 16 * 1024;

/// What the PostgreSQL listener needs to run.
pub struct ListenerSettings {
    /// Client-facing TLS.
    pub tls: Arc<rustls::ServerConfig>,
    /// Accept clients without TLS when they connect from a loopback address.
    pub plaintext_on_loopback: bool,
    /// Configured backends by connection name.
    pub connections: HashMap<String, Arc<BackendTarget>>,
    /// Limit for the whole startup handshake of one client.
    pub handshake_timeout: Duration,
    /// Statement analysis and policy.
    pub gate: GateSettings,
    /// Masking by connection name (connections without masking are absent).
    pub masking: HashMap<String, Arc<ConnectionMasking>>,
    /// Masks what recordings keep for connections without masking (secrets
    /// such as passwords in statement texts).
    pub record_masking: Arc<MaskingEngine>,
    /// Checks the password: a service token or an OIDC workload token.
    pub authenticator: Authenticator,
    /// What one caller can make the gateway hold or do.
    pub limits: SessionLimits,
}

/// The PostgreSQL side of the gateway.
#[derive(Clone)]
pub struct PostgresGateway {
    inner: Arc<Inner>,
}

struct Inner {
    settings: ListenerSettings,
    acceptor: TlsAcceptor,
    recorder: SessionRecorder,
    cancels: CancelRegistry,
    occupancy: Arc<Occupancy>,
}

/// A refusal sent to the client as an ErrorResponse before closing.
struct Refusal {
    code: &'static str,
    message: String,
    hint: Option<&'static str>,
}

impl Refusal {
    fn new(code: &'static str, message: impl Into<String>, hint: Option<&'static str>) -> Self {
        Self {
            code,
            message: message.into(),
            hint,
        }
    }
}

type Params = Vec<(String, String)>;

enum Handshake {
    /// The client only wanted to cancel a query, or went away.
    Done,
    /// The client is refused with this error.
    Refused(PgStream, Refusal),
    /// A session is established.
    Session(Box<Established>),
}

struct Established {
    /// Set once the handshake hands the stream over.
    client: Option<PgStream>,
    client_leftover: BytesMut,
    identity: AuthenticatedIdentity,
    target: Arc<BackendTarget>,
    backend: backend::BackendSession,
    client_user: String,
    application_name: Option<String>,
    /// Counts this session against its identity's limit while it lasts.
    _session_slot: SessionSlot,
    /// The connection's functions a qualified name can call.
    function_names: Arc<FunctionNames>,
}

impl PostgresGateway {
    /// Builds the gateway side for PostgreSQL.
    pub fn new(settings: ListenerSettings, recorder: SessionRecorder) -> Self {
        let acceptor = TlsAcceptor::from(settings.tls.clone());
        Self {
            inner: Arc::new(Inner {
                settings,
                acceptor,
                recorder,
                cancels: CancelRegistry::default(),
                occupancy: Arc::default(),
            }),
        }
    }

    /// Accepts clients on `listener` until `shutdown` turns true, then ends
    /// every session and waits for them to be recorded.
    pub async fn serve(&self, listener: TcpListener, shutdown: watch::Receiver<bool>) {
        let mut sessions = JoinSet::new();
        let mut stopping = shutdown.clone();
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((socket, peer)) => {
                        let this = self.clone();
                        let stop = shutdown.clone();
                        let max = self.inner.settings.limits.max_connections;
                        match self.inner.occupancy.connection(max) {
                            Some(slot) => {
                                sessions.spawn(async move {
                                    this.handle(socket, peer, stop).await;
                                    drop(slot);
                                });
                            }
                            None => {
                                let slot = self.inner.occupancy.refusal();
                                sessions.spawn(async move {
                                    this.over_capacity(socket, peer, max, slot.is_some()).await;
                                    drop(slot);
                                });
                            }
                        }
                    }
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
                _ = stopped(&mut stopping) => break,
            }
        }
        drop(listener);
        while sessions.join_next().await.is_some() {}
    }

    /// Refuses a connection beyond `max_connections` at once, as PostgreSQL
    /// answers "too many clients": after its TLS handshake and startup packet
    /// (so the client can show why) when `handshake`, else before reading
    /// anything (clients then show only that the server sent an error).
    async fn over_capacity(&self, socket: TcpStream, peer: SocketAddr, max: u32, handshake: bool) {
        let message = format!(
            "gatehouse has {max} client connections open, its limit ([limits] max_connections)"
        );
        let client_addr = peer.to_string();
        let attempt = AuthAttempt {
            protocol: "postgres",
            client_addr: &client_addr,
            connection: None,
        };
        if let Some(unlogged) = self.inner.occupancy.refusal_event() {
            let reason = match unlogged {
                0 => message.clone(),
                n => format!(
                    "{message} ({n} more refused in the second before, not logged one by one)"
                ),
            };
            // At most once a second, like the event: a flood must not flood the log.
            tracing::warn!(client = %peer, "{reason}; connection refused");
            let event = AuditEvent::auth_failure(&attempt, None, "limit", &reason);
            if let Err(e) = self.inner.recorder.audit(vec![event]).await {
                tracing::error!(error = %e, "could not log a refused connection");
            }
        }
        let refusal = Refusal::new("53300", message, Some("try again in a moment"));
        if !handshake {
            refuse(&mut PgStream::Plain(socket), &refusal).await;
            return;
        }
        let negotiated = tokio::time::timeout(
            OVER_CAPACITY_HANDSHAKE,
            self.negotiate(PgStream::Plain(socket)),
        )
        .await;
        // A startup packet read (or a refusal of its own): tell it why.
        if let Ok(Ok(Some((mut stream, _, _))) | Err((Some(mut stream), _))) = negotiated {
            refuse(&mut stream, &refusal).await;
        }
    }

    async fn handle(&self, socket: TcpStream, peer: SocketAddr, shutdown: watch::Receiver<bool>) {
        let _ = socket.set_nodelay(true);
        let timeout = self.inner.settings.handshake_timeout;
        let handshake = self.handshake(PgStream::Plain(socket), peer);
        match tokio::time::timeout(timeout, handshake).await {
            Ok(Handshake::Session(e)) => self.run_session(*e, peer, shutdown).await,
            Ok(Handshake::Done) => {}
            Ok(Handshake::Refused(mut stream, refusal)) => {
                tracing::info!(client = %peer, code = refusal.code, reason = %refusal.message, "connection refused");
                refuse(&mut stream, &refusal).await;
            }
            Err(_) => {
                tracing::info!(client = %peer, "startup handshake timed out; connection closed")
            }
        }
    }

    async fn handshake(&self, stream: PgStream, peer: SocketAddr) -> Handshake {
        let (mut stream, minor, params) = match self.negotiate(stream).await {
            Ok(Some(started)) => started,
            Ok(None) => return Handshake::Done,
            Err((Some(stream), refusal)) => return Handshake::Refused(stream, refusal),
            Err((None, refusal)) => {
                tracing::info!(client = %peer, reason = %refusal.message, "connection dropped");
                return Handshake::Done;
            }
        };
        match self.authenticate(&mut stream, peer, minor, &params).await {
            Ok(Some(mut e)) => {
                e.client = Some(stream);
                Handshake::Session(e)
            }
            Ok(None) => Handshake::Done,
            Err(refusal) => Handshake::Refused(stream, refusal),
        }
    }

    /// Reads startup packets until a StartupMessage, upgrading to TLS on
    /// request and answering cancel requests.
    async fn negotiate(
        &self,
        mut stream: PgStream,
    ) -> Result<Option<(PgStream, u16, Params)>, (Option<PgStream>, Refusal)> {
        loop {
            let body = match read_startup(&mut stream).await {
                Ok(Some(b)) => b,
                Ok(None) => return Ok(None),
                Err(r) => return Err((Some(stream), r)),
            };
            let packet = match parse_startup_packet(&body) {
                Ok(p) => p,
                Err(e) => {
                    return Err((
                        Some(stream),
                        Refusal::new("08P01", format!("invalid startup packet: {e}"), None),
                    ))
                }
            };
            match packet {
                StartupPacket::SslRequest => {
                    let mut tcp = match stream {
                        PgStream::Plain(tcp) => tcp,
                        other => {
                            return Err((
                                Some(other),
                                Refusal::new("08P01", "SSLRequest received inside TLS", None),
                            ))
                        }
                    };
                    if let Err(e) = tcp.write_all(b"S").await {
                        return Err((None, io_refusal(e)));
                    }
                    // read_startup reads exactly one packet, so no plaintext bytes can be
                    // smuggled in ahead of the TLS handshake.
                    match self.inner.acceptor.accept(tcp).await {
                        Ok(tls) => stream = PgStream::ServerTls(Box::new(tls)),
                        Err(e) => {
                            return Err((
                                None,
                                Refusal::new("08P01", format!("TLS handshake failed: {e}"), None),
                            ))
                        }
                    }
                }
                StartupPacket::GssEncRequest => {
                    if let Err(e) = crate::io::send(&mut stream, b"N").await {
                        return Err((None, io_refusal(e)));
                    }
                }
                StartupPacket::Cancel { pid, secret } => {
                    self.inner.cancels.cancel(pid, secret).await;
                    return Ok(None);
                }
                StartupPacket::Startup { minor, params } => {
                    return Ok(Some((stream, minor, params)))
                }
            }
        }
    }

    /// Checks transport and token, picks the connection and logs in to the backend.
    async fn authenticate(
        &self,
        stream: &mut PgStream,
        peer: SocketAddr,
        minor: u16,
        params: &Params,
    ) -> Result<Option<Box<Established>>, Refusal> {
        let inner = &self.inner;
        let param = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let client_user = param("user").unwrap_or_default();
        let dbname = param("database").unwrap_or_else(|| client_user.clone());
        let client_addr = peer.to_string();
        let attempt = AuthAttempt {
            protocol: "postgres",
            client_addr: &client_addr,
            connection: Some(&dbname),
        };
        let plaintext_allowed = inner.settings.plaintext_on_loopback && peer.ip().is_loopback();
        if !stream.is_tls() && !plaintext_allowed {
            let refusal = Refusal::new(
                "28000",
                "gatehouse requires TLS",
                Some("connect with sslmode=require (or verify-full with the gateway's CA certificate)"),
            );
            return Err(self.failed(&attempt, None, "transport", refusal).await);
        }
        if params
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("replication"))
        {
            return Err(Refusal::new(
                "0A000",
                "replication connections are not supported through gatehouse",
                None,
            ));
        }

        let mut out = BytesMut::with_capacity(256);
        if minor > 0 {
            let unknown: Vec<&str> = params
                .iter()
                .filter(|(k, _)| k.starts_with("_pq_."))
                .map(|(k, _)| k.as_str())
                .collect();
            negotiate_protocol_version(&mut out, 0, &unknown);
        }
        auth_cleartext_password(&mut out);
        crate::io::send(stream, &out).await.map_err(io_refusal)?;
        out.clear();

        let mut buf = BytesMut::with_capacity(1024);
        let msg = read_message(stream, &mut buf, MAX_PASSWORD_MESSAGE)
            .await
            .map_err(|e| {
                Refusal::new(
                    "08P01",
                    format!("invalid message during authentication: {e}"),
                    None,
                )
            })?;
        let Some((ty, body)) = msg else {
            return Ok(None);
        };
        if ty != b'p' {
            return Err(Refusal::new(
                "08P01",
                format!("expected a password message, got {:?}", ty as char),
                None,
            ));
        }
        let password = parse_password(&body)
            .map_err(|e| Refusal::new("08P01", format!("invalid password message: {e}"), None))?;
        let identity = match inner
            .settings
            .authenticator
            .authenticate(password, Timestamp::now())
            .await
        {
            Ok(identity) => identity,
            Err(e) => {
                let hint = match CredentialKind::of(password) {
                    CredentialKind::Jwt => "use a current token from your platform (GitHub Actions, Entra ID, GitLab, Kubernetes…) with the audience the gateway expects; `gatehouse identity inspect` shows what the gateway makes of a token",
                    _ => "use a token from `gatehouse token create`, or an OIDC token from a trusted issuer, as the password",
                };
                let refusal =
                    Refusal::new("28P01", format!("authentication failed: {e}"), Some(hint));
                return Err(self.failed(&attempt, None, "credential", refusal).await);
            }
        };
        let subject = Some(identity.identity().subject.as_str());

        let Some(target) = inner.settings.connections.get(&dbname).cloned() else {
            let refusal = Refusal::new(
                "3D000",
                format!("connection \"{dbname}\" is not configured on this gateway"),
                Some("set dbname to the name of a [[connection]] in the gateway's configuration"),
            );
            return Err(self.failed(&attempt, subject, "connection", refusal).await);
        };

        let (engine, _) = inner.settings.gate.policy.current();
        let decision = engine.decide_connect(&ConnectRequest {
            identity: identity.identity(),
            connection: &target.name,
            kind: "postgres",
            client_ip: peer.ip(),
            now: Timestamp::now(),
        });
        match (decision, inner.settings.gate.policy.mode()) {
            (Decision::Allow { .. }, _) => {}
            (refused, PolicyMode::Audit) => tracing::info!(
                identity = %identity.identity().subject, connection = %target.name, decision = refused.name(),
                "audit mode: letting through a connection the policy refuses"
            ),
            (
                Decision::Deny { reason, .. } | Decision::Review { reason, .. },
                PolicyMode::Enforce,
            ) => {
                let refusal = Refusal::new(
                    "28000",
                    format!("gatehouse: permission denied: {reason}"),
                    Some("ask the gateway's operator for a policy that permits this identity to connect"),
                );
                return Err(self.failed(&attempt, subject, "policy", refusal).await);
            }
        }
        // One identity may not take every backend connection.
        let max = inner.settings.limits.max_sessions_per_identity;
        let session_slot = match inner.occupancy.session(&identity.identity().subject, max) {
            Ok(slot) => slot,
            Err(open) => {
                let refusal = Refusal::new(
                    "53300",
                    format!(
                        "gatehouse: {} has {open} sessions open, the most one identity may ([limits] max_sessions_per_identity)",
                        identity.identity().subject
                    ),
                    Some("close a session first, or ask the gateway's operator to raise the limit"),
                );
                return Err(self.failed(&attempt, subject, "limit", refusal).await);
            }
        };
        // Startup settings are decided like the SETs they amount to.
        let forwarded =
            match startup_settings(&inner.settings.gate, params, &identity, &target, peer) {
                Ok(f) => f,
                Err(refusal) => {
                    return Err(self.failed(&attempt, subject, "setting", refusal).await)
                }
            };
        // Write-ahead: the login is in the evidence log before the backend sees it.
        let success = AuditEvent::auth_success(&attempt, identity.identity());
        if let Err(e) = inner.recorder.audit(vec![success]).await {
            tracing::error!(error = %e, "could not log a login; refusing it");
            return Err(evidence_refusal());
        }

        let mut backend = backend::connect(&target, &forwarded).await.map_err(|e| {
            let code = match e {
                BackendError::Unreachable { .. } => "08006",
                BackendError::Rejected { .. } | BackendError::Protocol { .. } => "08004",
            };
            tracing::warn!(connection = %target.name, error = %e, "backend connection failed");
            Refusal::new(
                code,
                e.to_string(),
                Some("try again later; if it persists, ask the gateway's operator"),
            )
        })?;

        let function_names = self.function_names(&target, &mut backend).await?;
        Ok(Some(Box::new(Established {
            client: None,
            client_leftover: buf,
            identity,
            target,
            backend,
            client_user,
            application_name: param("application_name"),
            _session_slot: session_slot,
            function_names,
        })))
    }

    /// The connection's functions a qualified name can call: the shared list
    /// when it is fresh, else read now through this session's backend login.
    /// A list that cannot be read refuses the session (fail closed).
    async fn function_names(
        &self,
        target: &BackendTarget,
        backend: &mut backend::BackendSession,
    ) -> Result<Arc<FunctionNames>, Refusal> {
        let catalog = &self.inner.settings.gate.functions;
        if let Some(names) = catalog.current(&target.name) {
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
            Refusal::new(
                "08004",
                format!("the gateway could not read the database's functions, so it cannot decide qualified names: {e}"),
                Some("try again later; if it persists, ask the gateway's operator"),
            )
        })?;
        let names = Arc::new(FunctionNames::from_rows(rows));
        catalog.store(&target.name, names.clone());
        Ok(names)
    }

    /// Logs a refused login and hands back the refusal; if even that cannot
    /// be logged, the caller is told the gateway cannot record logins.
    async fn failed(
        &self,
        attempt: &AuthAttempt<'_>,
        subject: Option<&str>,
        stage: &str,
        refusal: Refusal,
    ) -> Refusal {
        let event = AuditEvent::auth_failure(attempt, subject, stage, &refusal.message);
        match self.inner.recorder.audit(vec![event]).await {
            Ok(()) => refusal,
            Err(e) => {
                tracing::error!(error = %e, "could not log a refused login");
                evidence_refusal()
            }
        }
    }

    async fn run_session(&self, e: Established, peer: SocketAddr, shutdown: watch::Receiver<bool>) {
        let inner = &self.inner;
        let Established {
            client,
            client_leftover,
            identity,
            target,
            mut backend,
            client_user,
            application_name,
            _session_slot,
            function_names,
        } = e;
        let Some(mut client) = client else { return };
        let start = SessionStart {
            id: SessionId::new(),
            identity: identity.into_identity(),
            connection: target.name.clone(),
            protocol: "postgres".into(),
            client_addr: peer.to_string(),
            client_user,
            application_name,
            started_at: Timestamp::now(),
        };
        if let Err(err) = inner.recorder.session_started(&start).await {
            tracing::error!(error = %err, "could not record session start; refusing the session");
            let refusal = match err {
                StartError::Audit(_) => evidence_refusal(),
                StartError::Store(_) => Refusal::new(
                    "58000",
                    "the gateway could not record this session, so it was not opened",
                    Some("try again later; the gateway's operator has been told in its logs"),
                ),
            };
            refuse(&mut client, &refusal).await;
            return;
        }
        tracing::info!(
            session = %start.id, identity = %start.identity.subject, connection = %start.connection,
            client = %peer, "session started"
        );

        let cancel_key = inner
            .cancels
            .register(&target.host, target.port, backend.key);
        let mut out = BytesMut::with_capacity(backend.greeting.len() + 64);
        auth_ok(&mut out);
        out.put_slice(&backend.greeting);
        backend_key_data(&mut out, cancel_key.pid, cancel_key.secret);
        // ReadyForQuery, idle.
        out.put_slice(&[b'Z', 0, 0, 0, 5, b'I']);
        let mut gate = Gate::new(
            inner.settings.gate.clone(),
            start.identity.clone(),
            target.name.clone(),
            peer.ip(),
        );
        // The backend took the pinned settings, or the session cannot be read as it reads it.
        let broken = gate::settings::PINNED.iter().find_map(|(name, _)| {
            let value = greeting_param(&backend.greeting, name).unwrap_or_default();
            gate::settings::reported_break(name, &value)
        });
        if let Some(reason) = broken {
            let refusal = Refusal::new(
                "08004",
                format!("the database did not take the gateway's pinned settings: {reason}"),
                Some("tell the gateway's operator: the backend server overrides client_encoding or standard_conforming_strings"),
            );
            refuse(&mut client, &refusal).await;
            return;
        }
        gate.set_search_path(std::mem::take(&mut backend.search_path), &target.user);
        gate.set_function_names(function_names);
        let masking = SessionMasking::new(
            inner.settings.masking.get(&target.name).cloned(),
            inner.settings.record_masking.clone(),
            &start.identity.groups,
        );
        gate.set_column_guard(masking.column_guard());
        let tracker = Mutex::new(Tracker::new(start.id, gate, masking));
        let counters = Counters::default();
        let ending = if let Err(err) = crate::io::send(&mut client, &out).await {
            relay::Ending {
                reason: gatehouse_core::SessionEndReason::ClientDisconnected,
                detail: Some(format!("client: {err}")),
            }
        } else {
            relay::relay(
                client,
                client_leftover,
                backend.stream,
                backend.leftover,
                &tracker,
                &inner.recorder,
                &counters,
                &inner.settings.limits,
                shutdown,
                cancel_key.cancelled(),
            )
            .await
        };
        drop(cancel_key);

        let leftovers = {
            let mut t = relay::lock(&tracker);
            t.drain_incomplete();
            std::mem::take(&mut t.done)
        };
        for r in leftovers {
            let _ = inner.recorder.statement(r).await;
        }
        let end = SessionEnd {
            id: start.id,
            ended_at: Timestamp::now(),
            bytes_from_client: counters
                .from_client
                .load(std::sync::atomic::Ordering::Relaxed),
            bytes_to_client: counters
                .to_client
                .load(std::sync::atomic::Ordering::Relaxed),
            reason: ending.reason,
            detail: ending.detail,
        };
        tracing::info!(session = %start.id, reason = end.reason.as_str(), "session ended");
        if inner.recorder.session_ended(end).await.is_err() {
            tracing::error!(session = %start.id, "could not record session end: recorder stopped");
        }
    }
}

/// The refusal when the evidence log cannot take an event.
fn evidence_refusal() -> Refusal {
    Refusal::new(
        "58030",
        "gatehouse could not write its evidence log, so the connection was not opened",
        Some("try again later; the gateway's operator has been told in its logs"),
    )
}

/// Reads one untyped startup packet, exactly (never more bytes than it holds).
async fn read_startup(stream: &mut PgStream) -> Result<Option<Vec<u8>>, Refusal> {
    let mut len = [0u8; 4];
    match stream.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(io_refusal(e)),
    }
    let len = u32::from_be_bytes(len) as usize;
    if !(8..=MAX_STARTUP_LEN).contains(&len) {
        return Err(Refusal::new(
            "08P01",
            format!("invalid startup packet length {len}"),
            None,
        ));
    }
    let mut body = vec![0u8; len - 4];
    stream.read_exact(&mut body).await.map_err(io_refusal)?;
    Ok(Some(body))
}

fn io_refusal(e: std::io::Error) -> Refusal {
    Refusal::new("08006", format!("connection error: {e}"), None)
}

async fn refuse(stream: &mut PgStream, r: &Refusal) {
    let mut out = BytesMut::new();
    error_response(
        &mut out,
        &ErrorNotice {
            severity: "FATAL",
            code: r.code,
            message: &r.message,
            detail: None,
            hint: r.hint,
        },
    );
    let _ = crate::io::send(stream, &out).await;
    let _ = stream.shutdown().await;
}

/// Completes once `rx` reads true (or its sender is gone). The watch guard is
/// dropped inside, so the future stays `Send`.
pub(crate) async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// A parameter's value from raw ParameterStatus messages.
fn greeting_param(greeting: &[u8], name: &str) -> Option<String> {
    let mut rest = greeting;
    while rest.len() >= 5 {
        let ty = rest[0];
        let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        let total = 1 + len;
        if len < 4 || rest.len() < total {
            return None;
        }
        if ty == b'S' {
            let mut c = crate::codec::Cursor::new(&rest[5..total]);
            if let (Ok(k), Ok(v)) = (c.cstr("name"), c.cstr("value")) {
                if k == name {
                    return Some(v.to_string());
                }
            }
        }
        rest = &rest[total..];
    }
    None
}

/// The startup parameters passed to the backend: the pinned settings, the
/// harmless ones, and those the policy allows as the `SET` they amount to.
fn startup_settings(
    gate_settings: &GateSettings,
    params: &Params,
    identity: &AuthenticatedIdentity,
    target: &BackendTarget,
    peer: SocketAddr,
) -> Result<Params, Refusal> {
    let sorted = gate::settings::StartupSettings::sort(params).map_err(|reason| {
        Refusal::new(
            "22023",
            format!("gatehouse: {reason}"),
            Some("connect without that startup setting, or set it with SET once connected"),
        )
    })?;
    let mut forwarded = sorted.forwarded;
    if sorted.to_decide.is_empty() {
        return Ok(forwarded);
    }
    // No approval desk: a startup setting that needs approval is refused,
    // and no request is filed for a login that cannot wait for it.
    let settings = GateSettings {
        approvals: None,
        ..gate_settings.clone()
    };
    let mut gate = Gate::new(
        settings,
        identity.identity().clone(),
        target.name.clone(),
        peer.ip(),
    );
    for (name, value) in sorted.to_decide {
        let sql = gate::settings::as_set_statement(&name, &value);
        let (verdict, _) = gate.decide_text(&sql, "simple");
        if verdict.refusal.is_some() || verdict.hold.is_some() {
            let reason = verdict.record.reason.unwrap_or_default();
            let by = if verdict.record.policies.is_empty() {
                String::new()
            } else {
                format!(" (policy {})", verdict.record.policies.join(", "))
            };
            return Err(Refusal::new(
                "42501",
                format!("gatehouse: permission denied: startup setting {name}: {reason}{by}"),
                Some("a startup setting (also one in options=-c …) is decided like the SET statement it amounts to; connect without it"),
            ));
        }
        forwarded.push((name, value));
    }
    Ok(forwarded)
}
