//! Gatehouse's PostgreSQL adapter.
//!
//! Speaks protocol 3.0 to clients (TLS terminated with rustls; the password a
//! client sends is its Gatehouse token) and to backends (the gateway's own
//! credentials: SCRAM-SHA-256, MD5 or cleartext, over TLS per `backend_tls`),
//! and relays the session between them as a stream. Every statement is
//! analyzed and decided by policy before any of it reaches the backend, and
//! recorded with its decision.

mod backend;
mod cancel;
pub mod codec;
mod ending;
mod gate;
mod handshake;
mod hold;
mod io;
mod limits;
mod listener;
mod mask;
mod refusals;
mod relay;
mod sampling;
mod session;
mod stream;
mod tls;
mod tracker;

pub use backend::{BackendError, BackendPassword, BackendTarget, BackendTls};
pub use gate::functions::FunctionCatalog;
pub use gate::GateSettings;
pub use limits::SessionLimits;
pub use mask::{ConnectionMasking, Discovery};
pub use sampling::TableSampler;
pub use tls::{client_config_unverified, client_config_verified, server_config, TlsError};

use cancel::CancelRegistry;
use gatehouse_mask::MaskingEngine;
use gatehouse_session::Gatekeeper;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_rustls::TlsAcceptor;

/// What the PostgreSQL listener needs to run.
pub struct ListenerSettings {
    /// Client-facing TLS.
    pub tls: Arc<rustls::ServerConfig>,
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
    /// What one caller can make the gateway hold or do.
    pub limits: SessionLimits,
}

/// The PostgreSQL side of the gateway.
#[derive(Clone)]
pub struct PostgresGateway {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) settings: ListenerSettings,
    pub(crate) acceptor: TlsAcceptor,
    /// The login sequence, sessions and what they report.
    pub(crate) gatekeeper: Gatekeeper,
    pub(crate) cancels: CancelRegistry,
}

impl PostgresGateway {
    /// Builds the gateway side for PostgreSQL; callers log in through `gatekeeper`.
    pub fn new(settings: ListenerSettings, gatekeeper: Gatekeeper) -> Self {
        let acceptor = TlsAcceptor::from(settings.tls.clone());
        Self {
            inner: Arc::new(Inner {
                settings,
                acceptor,
                gatekeeper,
                cancels: CancelRegistry::default(),
            }),
        }
    }
}
