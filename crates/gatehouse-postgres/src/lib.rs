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
mod gate;
mod hold;
mod io;
mod limits;
mod listener;
mod mask;
mod relay;
mod stream;
mod tls;
mod tracker;

pub use backend::{BackendError, BackendPassword, BackendTarget, BackendTls};
pub use gate::functions::FunctionCatalog;
pub use gate::GateSettings;
pub use limits::SessionLimits;
pub use listener::{ListenerSettings, PostgresGateway};
pub use mask::ConnectionMasking;
pub use tls::{client_config_unverified, client_config_verified, server_config, TlsError};
