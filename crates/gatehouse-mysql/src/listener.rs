//! The MySQL listener: accepts callers (up to the connection limit, counted
//! with every other listener's) and runs each one's login and session.

use crate::handshake;
use crate::MysqlSettings;
use gatehouse_session::{accept_until_shutdown, Gatekeeper};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// What every connection of the listener shares.
pub(crate) struct Gw {
    pub(crate) settings: MysqlSettings,
    pub(crate) gatekeeper: Gatekeeper,
    /// The connection ids the gateway gives callers (never the backend's).
    next_id: AtomicU32,
    /// Live sessions, for `KILL`.
    pub(crate) kills: Arc<crate::kill::Sessions>,
}

impl Gw {
    /// A fresh caller-facing connection id, none a live session holds.
    pub(crate) fn connection_id(&self) -> u32 {
        loop {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            if id != 0 && !self.kills.in_use(id) {
                return id;
            }
        }
    }
}

/// The MySQL listener.
#[derive(Clone)]
pub struct MysqlGateway {
    gw: Arc<Gw>,
}

impl MysqlGateway {
    /// A listener over these settings, letting callers in with `gatekeeper`.
    pub fn new(settings: MysqlSettings, gatekeeper: Gatekeeper) -> Self {
        Self {
            gw: Arc::new(Gw {
                settings,
                gatekeeper,
                next_id: AtomicU32::new(1),
                kills: Arc::default(),
            }),
        }
    }

    /// Accepts callers until `shutdown` reads true, then ends the open
    /// sessions.
    pub async fn serve(self, listener: TcpListener, shutdown: watch::Receiver<bool>) {
        let gw = self.gw.clone();
        let occupancy = self.gw.gatekeeper.occupancy().clone();
        let max = self.gw.settings.max_connections;
        accept_until_shutdown(
            "mysql",
            listener,
            &occupancy,
            max,
            shutdown,
            |stream, peer, stop| handshake::serve(gw.clone(), stream, peer, stop),
        )
        .await;
    }
}
