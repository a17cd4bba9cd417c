//! Gatehouse MySQL and MariaDB adapter.
//!
//! Callers log in with their token as the password (`mysql_clear_password`
//! over TLS) and name the connection as the database. The gateway then logs
//! in to the backend with its own credentials, and decides every command
//! before any of it reaches the server: SQL is lexed the way the server's
//! version lexes it (executable comments included) and parsed into the same
//! actions, tables and flags as PostgreSQL statements, so the same Cedar
//! policies apply. A statement it does not fully understand is refused.
//! Results are masked by the columns' origins, which the protocol reports.
//!
//! - `listener.rs`: accept loop, one task per caller.
//! - `handshake.rs`: the caller's login, on the core's login sequence.
//! - `backend.rs` (+ `backend/auth.rs`): the backend login.
//! - `session.rs`: the command loop; `gate.rs` decides, `results.rs`
//!   relays (and masks) what the server answers, `refusals.rs` words every
//!   error a caller sees.
//! - `codec/`: framing and one file per message family; `sql/`: analysis.

pub mod sql;

mod backend;
mod codec;
mod gate;
mod handshake;
mod io;
mod kill;
mod listener;
mod prepared;
mod refusals;
mod results;
mod session;
mod statement;

pub use listener::MysqlGateway;

/// Entry points for the fuzz targets (`crates/gatehouse-fuzz`): the
/// decoders a caller's or a server's bytes reach. Not an API.
#[doc(hidden)]
pub mod fuzz {
    use crate::codec::{binary, handshake};
    use crate::sql::Dialect;

    /// One statement's text through the lexer and the analysis, for MySQL 8
    /// and MariaDB, with and without `ANSI_QUOTES` and `NO_BACKSLASH_ESCAPES`.
    pub fn statement(text: &str) {
        for (version, mariadb) in [(80040, false), (101109, true)] {
            for modes in 0..4u8 {
                let dialect = Dialect {
                    version,
                    mariadb,
                    ansi_quotes: modes & 1 != 0,
                    no_backslash_escapes: modes & 2 != 0,
                };
                if let Ok(canonical) = crate::sql::lexer::canonical(text, &dialect) {
                    let _ = crate::sql::analyze::analyze(&canonical, text, &dialect);
                }
            }
        }
    }

    /// A handshake packet read every way it can arrive: a server's
    /// greeting, a caller's response or SSL request, an auth switch.
    pub fn handshake(payload: &[u8]) {
        let _ = handshake::Greeting::parse(payload);
        let _ = handshake::HandshakeResponse::parse(payload);
        let _ = handshake::ssl_request(payload);
        let _ = handshake::parse_auth_switch(payload);
    }

    /// A `COM_STMT_EXECUTE` payload after one byte giving its prepared
    /// statement's parameter count (which the gateway knows from PREPARE).
    pub fn execute(data: &[u8]) {
        let Some((&count, payload)) = data.split_first() else {
            return;
        };
        let count = usize::from(count % 32);
        let _ = binary::execute_head(payload);
        let _ = binary::execute_params(payload, count, &[], &binary::LongData::new());
    }
}

use gatehouse_mask::MaskingEngine;
use gatehouse_policy::PolicyHandle;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub use gatehouse_session::{BackendPassword, BackendTls};

/// One `kind = "mysql"` connection.
#[derive(Clone, Debug)]
pub struct MysqlTarget {
    /// Its name: what callers pass as the database.
    pub name: String,
    /// The server's host.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// The backend database sessions start in.
    pub database: String,
    /// The gateway's own user on it.
    pub user: String,
    /// That user's password.
    pub password: BackendPassword,
    /// TLS to it.
    pub tls: BackendTls,
    /// How long the connection and login to it may take.
    pub connect_timeout: Duration,
    /// The server's RSA public key, pinned (`backend_public_key_file`):
    /// `caching_sha2_password`'s full authentication without verified TLS
    /// sends the password encrypted to it.
    pub server_key: Option<ServerPublicKey>,
    /// Result masking for this connection (detectors and column rules).
    pub masking: Option<Arc<MaskingEngine>>,
    /// Groups whose members see results unmasked.
    pub exempt_groups: Vec<String>,
}

/// A MySQL server's RSA public key (its `public_key.pem`).
#[derive(Clone)]
pub struct ServerPublicKey(Arc<rsa::RsaPublicKey>);

impl ServerPublicKey {
    /// Reads a PEM public key (`BEGIN PUBLIC KEY` or `BEGIN RSA PUBLIC KEY`).
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        use rsa::pkcs1::DecodeRsaPublicKey;
        use rsa::pkcs8::DecodePublicKey;
        rsa::RsaPublicKey::from_public_key_pem(pem.trim())
            .or_else(|_| rsa::RsaPublicKey::from_pkcs1_pem(pem.trim()))
            .map(|k| Self(Arc::new(k)))
            .map_err(|e| format!("not an RSA public key in PEM: {e}"))
    }
}

impl std::fmt::Debug for ServerPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerPublicKey")
    }
}

/// What the MySQL listener needs.
#[derive(Clone)]
pub struct MysqlSettings {
    /// The caller-facing TLS configuration.
    pub tls: Arc<rustls::ServerConfig>,
    /// The `mysql` connections, by name.
    pub connections: HashMap<String, Arc<MysqlTarget>>,
    /// The policy.
    pub policy: Arc<PolicyHandle>,
    /// Masks what records keep (statement texts, parameters).
    pub record_masking: Arc<MaskingEngine>,
    /// How long a caller has to log in.
    pub login_timeout: Duration,
    /// The longest message a caller may send.
    pub max_message: usize,
    /// The longest result row the gateway masks (a longer one ends the session).
    pub max_masked_row: usize,
    /// At most this many caller connections at once.
    pub max_connections: usize,
}

/// Errors of the MySQL adapter.
#[derive(Debug, thiserror::Error)]
pub enum MysqlError {
    /// A socket failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A message could not be read.
    #[error("{0}")]
    Frame(#[from] codec::FrameError),
    /// TLS failed.
    #[error("TLS: {0}")]
    Tls(String),
    /// The backend answered something the gateway cannot use.
    #[error("the MySQL server at {0}")]
    Backend(String),
    /// The backend refused the gateway's login.
    #[error("the MySQL server refused the gateway's login: {0}")]
    BackendLogin(String),
    /// The backend session's `sql_mode` or character set is one the
    /// gateway does not read statements under.
    #[error("{0}")]
    UnsafeSession(String),
    /// A result row to mask is longer than the gateway masks.
    #[error("a result row of more than {0} bytes to mask")]
    RowTooLarge(usize),
    /// It took too long.
    #[error("{0} took longer than {1:?}")]
    Timeout(&'static str, Duration),
}
