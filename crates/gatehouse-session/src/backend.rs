//! What every adapter's backend leg shares: the password the gateway logs
//! in with (never printed) and how it secures the connection (libpq's
//! `sslmode` names, used by every database adapter).

use std::sync::Arc;

/// A backend password. Its `Debug` never prints it.
#[derive(Clone)]
pub struct BackendPassword(String);

impl BackendPassword {
    /// Wraps a password read from the environment or a file.
    pub fn new(p: String) -> Self {
        Self(p)
    }

    /// The password itself, for the backend login that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for BackendPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BackendPassword(<redacted>)")
    }
}

/// How the gateway secures the backend leg.
#[derive(Clone, Debug)]
pub enum BackendTls {
    /// Plain TCP.
    Disable,
    /// TLS if the server offers it, else plain; certificate not verified.
    Prefer(Arc<rustls::ClientConfig>),
    /// TLS or fail; certificate not verified.
    Require(Arc<rustls::ClientConfig>),
    /// TLS, chain verified against the configured CA, host name checked.
    VerifyFull(Arc<rustls::ClientConfig>),
}
