//! The PostgreSQL listener: accepts connections within the gateway's limit,
//! runs each one's handshake (`handshake.rs`) and session (`session.rs`),
//! and drains them at shutdown.

use crate::ending::stopped;
use crate::refusals;
use crate::stream::PgStream;
use crate::PostgresGateway;
use gatehouse_core::Protocol;
use gatehouse_session::LoginAttempt;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// How long a connection over the limit may take to say what it wants
/// before it is closed.
const OVER_CAPACITY_HANDSHAKE: Duration = Duration::from_secs(5);

impl PostgresGateway {
    /// Accepts clients on `listener` until `shutdown` turns true, then ends
    /// every session and waits for them to be recorded.
    pub async fn serve(&self, listener: TcpListener, shutdown: watch::Receiver<bool>) {
        let mut sessions = JoinSet::new();
        let mut stopping = shutdown.clone();
        let occupancy = self.inner.gatekeeper.occupancy().clone();
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((socket, peer)) => {
                        let this = self.clone();
                        let stop = shutdown.clone();
                        let max = self.inner.settings.limits.max_connections;
                        match occupancy.connection(max) {
                            Some(slot) => {
                                sessions.spawn(async move {
                                    this.handle(socket, peer, stop).await;
                                    drop(slot);
                                });
                            }
                            None => {
                                let slot = occupancy.refusal();
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
        let refusal = refusals::over_capacity(max);
        let gatekeeper = &self.inner.gatekeeper;
        if let Some(unlogged) = gatekeeper.occupancy().refusal_event() {
            let reason = match unlogged {
                0 => refusal.message.clone(),
                n => format!(
                    "{} ({n} more refused in the second before, not logged one by one)",
                    refusal.message
                ),
            };
            // At most once a second, like the event: a flood must not flood the log.
            tracing::warn!(client = %peer, "{reason}; connection refused");
            let attempt = LoginAttempt {
                protocol: Protocol::Postgres,
                peer,
                encrypted: false,
                connection: None,
                kind: None,
            };
            gatekeeper.log_refusal(&attempt, "limit", &reason).await;
        }
        if !handshake {
            refusals::send(&mut PgStream::Plain(socket), &refusal).await;
            return;
        }
        let negotiated = tokio::time::timeout(
            OVER_CAPACITY_HANDSHAKE,
            crate::handshake::negotiate(&self.inner, PgStream::Plain(socket)),
        )
        .await;
        // A startup packet read (or a refusal of its own): tell it why.
        if let Ok(Ok(Some((mut stream, _))) | Err((Some(mut stream), _))) = negotiated {
            refusals::send(&mut stream, &refusal).await;
        }
    }

    async fn handle(&self, socket: TcpStream, peer: SocketAddr, shutdown: watch::Receiver<bool>) {
        let _ = socket.set_nodelay(true);
        let timeout = self.inner.settings.handshake_timeout;
        let handshake = crate::handshake::handshake(&self.inner, PgStream::Plain(socket), peer);
        match tokio::time::timeout(timeout, handshake).await {
            Ok(crate::handshake::Handshake::Session(e)) => {
                crate::session::run(&self.inner, *e, peer, shutdown).await
            }
            Ok(crate::handshake::Handshake::Done) => {}
            Ok(crate::handshake::Handshake::Refused(mut stream, refusal)) => {
                tracing::info!(client = %peer, code = refusal.code, reason = %refusal.message, "connection refused");
                refusals::send(&mut stream, &refusal).await;
            }
            Err(_) => {
                tracing::info!(client = %peer, "startup handshake timed out; connection closed")
            }
        }
    }
}
