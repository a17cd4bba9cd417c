//! Accepting callers: TLS (plaintext only from loopback when allowed),
//! HTTP/1.1 per connection, graceful drain at shutdown.

use crate::exchange;
use crate::refusals::{self, Body};
use crate::session::CallerConnection;
use crate::HttpSettings;
use gatehouse_core::{Protocol, SessionEndReason};
use gatehouse_session::{Gatekeeper, LoginAttempt};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The HTTP adapter: one listener for every `http` connection.
#[derive(Clone)]
pub struct HttpGateway {
    pub(crate) settings: Arc<HttpSettings>,
    /// The login sequence, sessions and what they report.
    pub(crate) gatekeeper: Gatekeeper,
    slots: Arc<tokio::sync::Semaphore>,
    /// MCP session ids the upstreams issued, and the subject each was issued to.
    mcp_sessions: Arc<std::sync::Mutex<McpSessions>>,
}

/// MCP session ids by the subject they belong to; the oldest are forgotten
/// past a bound (their holders start a new session, as the protocol says
/// a client does on 404).
#[derive(Default)]
struct McpSessions {
    owner: std::collections::HashMap<String, String>,
    order: std::collections::VecDeque<String>,
}

/// MCP session ids remembered at once.
const MCP_SESSIONS_KEPT: usize = 100_000;

impl HttpGateway {
    /// Notes that the upstream issued session `sid` to `subject`.
    pub(crate) fn mcp_session_opened(&self, sid: &str, subject: &str) {
        let mut s = self.mcp_sessions.lock().unwrap_or_else(|p| p.into_inner());
        if s.owner
            .insert(sid.to_string(), subject.to_string())
            .is_none()
        {
            s.order.push_back(sid.to_string());
        }
        while s.order.len() > MCP_SESSIONS_KEPT {
            if let Some(old) = s.order.pop_front() {
                s.owner.remove(&old);
            }
        }
    }

    /// Whether `sid` was issued to `subject` through this gateway.
    pub(crate) fn mcp_session_is(&self, sid: &str, subject: &str) -> bool {
        let s = self.mcp_sessions.lock().unwrap_or_else(|p| p.into_inner());
        s.owner.get(sid).is_some_and(|o| o == subject)
    }
}

/// A TLS ClientHello starts with a handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

impl HttpGateway {
    /// The adapter over `settings`; callers log in through `gatekeeper`.
    pub fn new(settings: HttpSettings, gatekeeper: Gatekeeper) -> Self {
        Self {
            mcp_sessions: Arc::default(),
            slots: Arc::new(tokio::sync::Semaphore::new(settings.max_connections.max(1))),
            settings: Arc::new(settings),
            gatekeeper,
        }
    }

    /// Accepts callers until `shutdown` reads true, then lets the open
    /// connections finish their current request.
    pub async fn serve(self, listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let Ok(slot) = self.slots.clone().try_acquire_owned() else {
                            // Full: closed at once ([limits] max_connections).
                            tracing::warn!(%peer, "http listener: connection limit reached; closing a new connection");
                            drop(stream);
                            continue;
                        };
                        let gw = self.clone();
                        let stop = shutdown.clone();
                        tasks.spawn(async move {
                            gw.connection(stream, peer, stop).await;
                            drop(slot);
                        });
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "http listener: accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                },
                _ = stopped(&mut shutdown) => break,
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        while tasks.join_next().await.is_some() {}
    }

    async fn connection(self, stream: TcpStream, peer: SocketAddr, stop: watch::Receiver<bool>) {
        let _ = stream.set_nodelay(true);
        let mut first = [0u8; 1];
        // A caller that connects and says nothing is closed after the header timeout.
        let is_tls =
            match tokio::time::timeout(self.settings.header_timeout, stream.peek(&mut first)).await
            {
                Ok(Ok(1)) => first[0] == TLS_HANDSHAKE,
                Ok(_) => false,
                Err(_) => {
                    tracing::debug!(%peer, "http: no request within the header timeout");
                    return;
                }
            };
        let caller = Arc::new(CallerConnection::new(peer, is_tls));
        if is_tls {
            let acceptor = tokio_rustls::TlsAcceptor::from(self.settings.tls.clone());
            let handshake =
                tokio::time::timeout(self.settings.header_timeout, acceptor.accept(stream));
            match handshake.await {
                Ok(Ok(tls)) => self.serve_http(tls, caller.clone(), true, stop).await,
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "http: TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "http: TLS handshake timed out"),
            }
        } else {
            let allowed = self.settings.plaintext_on_loopback && peer.ip().is_loopback();
            self.serve_http(stream, caller.clone(), allowed, stop).await;
        }
        let reason = SessionEndReason::ClientDisconnected;
        caller.end(reason, None).await;
    }

    async fn serve_http<S>(
        &self,
        io: S,
        caller: Arc<CallerConnection>,
        transport_ok: bool,
        mut stop: watch::Receiver<bool>,
    ) where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let gw = self.clone();
        let service = service_fn(move |req| {
            let gw = gw.clone();
            let caller = caller.clone();
            async move {
                let resp: hyper::Response<Body> = if transport_ok {
                    exchange::handle(&gw, &caller, req).await
                } else {
                    let problem = refusals::tls_required();
                    let attempt = LoginAttempt {
                        protocol: Protocol::Http,
                        peer: caller.peer,
                        encrypted: false,
                        connection: None,
                        kind: None,
                    };
                    gw.gatekeeper
                        .log_refusal(&attempt, "transport", &problem.detail)
                        .await;
                    problem.response()
                };
                Ok::<_, Infallible>(resp)
            }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(self.settings.header_timeout)
            .keep_alive(transport_ok)
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        tokio::pin!(conn);
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "http connection ended with an error");
                }
            }
            _ = stopped(&mut stop) => {
                conn.as_mut().graceful_shutdown();
                let _ = conn.await;
            }
        }
    }
}

/// Completes once `rx` reads true; the watch guard is dropped inside so the future stays `Send`.
async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}
