//! The SSH listener: accepts callers (up to the connection limit, counted
//! with every other listener's), runs each connection's SSH session, and
//! closes its gateway session when the connection ends, after its
//! channels' records are written.

use crate::caller::CallerConnection;
use crate::SshSettings;
use gatehouse_core::SessionEndReason;
use gatehouse_session::{accept_until_shutdown, stopped, Gatekeeper};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What every connection of the listener shares.
pub(crate) struct Gw {
    pub(crate) settings: SshSettings,
    pub(crate) gatekeeper: Gatekeeper,
    config: Arc<russh::server::Config>,
}

/// The SSH listener.
#[derive(Clone)]
pub struct SshGateway {
    gw: Arc<Gw>,
}

impl SshGateway {
    /// A listener over these settings, letting callers in with `gatekeeper`.
    pub fn new(settings: SshSettings, gatekeeper: Gatekeeper) -> Self {
        let config = russh::server::Config {
            server_id: russh::SshId::Standard("SSH-2.0-Gatehouse".into()),
            keys: vec![settings.host_key.clone()],
            // Refusals are slowed by the core's failed-login limit; a fixed
            // delay here would only slow honest retries.
            auth_rejection_time: std::time::Duration::from_millis(200),
            auth_rejection_time_initial: Some(std::time::Duration::ZERO),
            inactivity_timeout: Some(settings.idle_timeout),
            keepalive_interval: Some(settings.keepalive),
            keepalive_max: 3,
            max_auth_attempts: 6,
            nodelay: true,
            ..russh::server::Config::default()
        };
        Self {
            gw: Arc::new(Gw {
                settings,
                gatekeeper,
                config: Arc::new(config),
            }),
        }
    }

    /// Accepts callers until `shutdown` reads true, then ends the open
    /// connections.
    pub async fn serve(self, listener: TcpListener, shutdown: watch::Receiver<bool>) {
        let gw = self.gw.clone();
        let occupancy = self.gw.gatekeeper.occupancy().clone();
        let max = self.gw.settings.max_connections;
        accept_until_shutdown(
            "ssh",
            listener,
            &occupancy,
            max,
            shutdown,
            |stream, peer, stop| connection(gw.clone(), stream, peer, stop),
        )
        .await;
    }
}

async fn connection(
    gw: Arc<Gw>,
    stream: TcpStream,
    peer: SocketAddr,
    mut stop: watch::Receiver<bool>,
) {
    let login = Arc::new(std::sync::Mutex::new(None));
    let handler = CallerConnection::new(gw.clone(), peer, login.clone());
    let running = match tokio::time::timeout(
        gw.settings.login_timeout,
        russh::server::run_stream(gw.config.clone(), stream, handler),
    )
    .await
    {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "ssh: handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "ssh: no handshake within the login timeout");
            return;
        }
    };
    let handle = running.handle();
    let mut running = std::pin::pin!(running);
    // A caller that has not logged in by the login timeout is disconnected.
    let login_deadline = tokio::time::sleep(gw.settings.login_timeout);
    let mut login_deadline = std::pin::pin!(login_deadline);
    let mut checking_login = true;
    let reason = loop {
        tokio::select! {
            r = &mut running => {
                if let Err(e) = r {
                    tracing::debug!(%peer, error = %e, "ssh connection ended with an error");
                }
                break SessionEndReason::ClientDisconnected;
            }
            () = &mut login_deadline, if checking_login => {
                checking_login = false;
                if login.lock().unwrap_or_else(|p| p.into_inner()).is_none() {
                    tracing::debug!(%peer, "ssh: not logged in within the login timeout");
                    let _ = handle
                        .disconnect(
                            russh::Disconnect::ByApplication,
                            "gatehouse: not logged in within the login timeout".into(),
                            "en".into(),
                        )
                        .await;
                    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), &mut running).await;
                    // A login finishing meanwhile opened a session: it is closed below.
                    break SessionEndReason::ClientDisconnected;
                }
            }
            () = stopped(&mut stop) => {
                let _ = handle
                    .disconnect(russh::Disconnect::ByApplication, "gatehouse is shutting down".into(), "en".into())
                    .await;
                let _ = tokio::time::timeout(std::time::Duration::from_secs(5), &mut running).await;
                break SessionEndReason::GatewayShutdown;
            }
        }
    };
    let login = login.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(login) = login {
        // The channels' tasks (and the channels the host opened back) record
        // their actions; the session ends after them.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
        let busy = |login: &Arc<crate::caller::Login>| {
            Arc::strong_count(login) > 1
                || login
                    .back_channels
                    .load(std::sync::atomic::Ordering::Acquire)
                    > 0
        };
        while busy(&login) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        login.session.close(reason, None).await;
    }
}
