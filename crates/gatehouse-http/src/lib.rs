//! Gatehouse HTTP adapter: REST APIs and MCP tool servers reached through
//! the gateway.
//!
//! A caller sends `https://gateway:port/<connection>/<path>` (or uses a
//! host name mapped to a connection) with `Authorization: Bearer <token>`
//! (`login.rs`). Each request is one *action* (`exchange.rs`): the path
//! normalised as the upstream will read it (`path.rs`), decided by the
//! policy as `http:<METHOD>` with its facts, or on an `mcp` connection each
//! JSON-RPC message as `mcp:<kind>` (`mcp.rs`), held for or refused pending
//! approval (`gate.rs`), written ahead to the evidence log, forwarded with
//! the gateway's own upstream credential (`upstream.rs`), and its response
//! streamed back masked (`response.rs`, `sse.rs`) and recorded
//! (`answer.rs`, `session.rs`). Refusals are RFC 9457 problem documents, or
//! JSON-RPC errors for MCP (`refusals.rs`).
//!
//! The adapter owns no policy, masking, approval or evidence logic: it
//! turns HTTP into the core's terms and back.

mod answer;
mod exchange;
mod gate;
mod kube;
mod listener;
mod login;
mod mcp;
pub mod path;
mod refusals;
mod response;
mod session;
mod sse;
mod upstream;

pub use kube::masking::kube_masking;
pub use listener::HttpGateway;
pub use upstream::{client as upstream_client, UpstreamClientError};

use gatehouse_mask::MaskingEngine;
use gatehouse_policy::PolicyHandle;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// How the gateway authenticates to an upstream.
#[derive(Clone)]
pub enum UpstreamAuth {
    /// No credential.
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(Secret),
    /// `<header>: <value>` (an API key).
    Header {
        /// The header's name.
        name: http::HeaderName,
        /// Its value.
        value: Secret,
    },
    /// `Authorization: Basic …`.
    Basic {
        /// The user.
        user: String,
        /// The password.
        password: Secret,
    },
}

/// A credential the gateway holds: never printed, never logged.
#[derive(Clone)]
pub struct Secret(Arc<str>);

impl Secret {
    /// Wraps a credential.
    pub fn new(s: impl Into<Arc<str>>) -> Self {
        Self(s.into())
    }

    /// The credential, for the request that carries it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// What an upstream speaks over HTTP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// A REST API: each request is an action.
    Rest,
    /// An MCP server (Streamable HTTP): each JSON-RPC message is an action.
    Mcp,
    /// A Kubernetes API server: each request is an action, classified as
    /// the API server classifies it.
    Kubernetes,
}

impl Dialect {
    /// The protocol its sessions and records carry.
    pub fn protocol(self) -> gatehouse_core::Protocol {
        match self {
            Dialect::Rest => gatehouse_core::Protocol::Http,
            Dialect::Mcp => gatehouse_core::Protocol::Mcp,
            Dialect::Kubernetes => gatehouse_core::Protocol::Kubernetes,
        }
    }

    /// The connection kind: `http`, `mcp` or `kubernetes`.
    pub fn kind(self) -> &'static str {
        match self {
            Dialect::Rest => "http",
            Dialect::Mcp => "mcp",
            Dialect::Kubernetes => "kubernetes",
        }
    }
}

/// One `[[connection]] kind = "http"`, `"mcp"` or `"kubernetes"`.
#[derive(Clone)]
pub struct HttpTarget {
    /// The connection's name: the first path segment callers use.
    pub name: String,
    /// REST or MCP.
    pub dialect: Dialect,
    /// The upstream base URL (`http://host:port/base`), without a trailing slash.
    pub url: url::Url,
    /// Host names (without port) that select this connection without a prefix.
    pub hosts: Vec<String>,
    /// How the gateway authenticates upstream.
    pub auth: UpstreamAuth,
    /// The HTTP client for this upstream (its CA, client certificate, timeouts).
    pub client: reqwest::Client,
    /// Masking of responses, when configured.
    pub masking: Option<Arc<HttpMasking>>,
    /// Bytes of a request body the record keeps (masked).
    pub record_body_limit: usize,
    /// Kubernetes: name the caller to the API server with
    /// `Impersonate-User` and `Impersonate-Group`.
    pub impersonate: bool,
    /// Kubernetes: the most bytes one exec or attach recording keeps; a
    /// stream that would need more is cut.
    pub recording_limit: usize,
}

/// Masking for one connection.
pub struct HttpMasking {
    /// The engine: detectors and JSON path rules.
    pub engine: Arc<MaskingEngine>,
    /// Kubernetes: the engine for answers about Secrets (`engine` plus
    /// every Secret value).
    pub secrets: Option<Arc<MaskingEngine>>,
    /// Callers in these groups get responses in clear (records stay masked).
    pub exempt_groups: Vec<String>,
}

impl HttpMasking {
    /// The engine for an answer: the Secrets one when the answer is about
    /// Secrets and the connection has one.
    pub(crate) fn engine_for(&self, about_secrets: bool) -> &Arc<MaskingEngine> {
        match &self.secrets {
            Some(secrets) if about_secrets => secrets,
            _ => &self.engine,
        }
    }
}

/// Everything the HTTP listener needs.
pub struct HttpSettings {
    /// The server certificate.
    pub tls: Arc<rustls::ServerConfig>,
    /// Accept plaintext HTTP from loopback peers.
    pub plaintext_on_loopback: bool,
    /// Connections by name.
    pub connections: HashMap<String, Arc<HttpTarget>>,
    /// The policy.
    pub policy: Arc<PolicyHandle>,
    /// Masks what records keep on connections without masking (secrets).
    pub record_masking: Arc<MaskingEngine>,
    /// Largest request body the gateway reads (it is decided and hashed whole).
    pub max_request_body: usize,
    /// Largest single JSON value or text line held to mask it.
    pub max_masked_value: usize,
    /// How long a caller may take to send a request's head (and its first
    /// byte, and the TLS handshake).
    pub header_timeout: Duration,
    /// Caller connections open at once (`[limits] max_connections`); more
    /// are closed at once, so silent sockets cannot exhaust descriptors.
    pub max_connections: usize,
    /// Where exec and attach recordings are kept (asciicast v2 files).
    pub recordings: std::path::PathBuf,
}

/// An engine with the email detector alone, for tests.
#[cfg(test)]
pub(crate) fn email_engine() -> MaskingEngine {
    MaskingEngine::new(
        gatehouse_mask::BUILTIN
            .iter()
            .filter(|d| d.name == "email")
            .map(|d| gatehouse_mask::DetectorSpec::builtin(d, None))
            .collect(),
        Vec::new(),
        gatehouse_mask::HashKey::new([0; 32]),
    )
    .unwrap_or_else(|e| unreachable!("the email detector compiles: {e}"))
}
