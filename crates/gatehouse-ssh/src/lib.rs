//! Gatehouse SSH adapter: hosts reached through the gateway with plain
//! `ssh`, `scp` and `sftp`.
//!
//! A caller connects to the gateway's SSH listener with the connection as
//! its user name (`ssh deploy-host@gateway`, or `backup@deploy-host@gateway`
//! for another account the connection allows) and its token as the
//! password (`caller.rs`). The login is the core's ([`gatehouse_session`]):
//! the credential checked, the connect policy decided, the session opened.
//! The gateway then reaches the target itself, with its own key and the
//! target's host key pinned (`upstream.rs`): the caller never sees either.
//!
//! Each channel's action is decided by the policy before anything of it
//! reaches the target (`channel.rs`): `ssh:shell`, `ssh:exec` with the
//! command and its words, `ssh:sftp`, `ssh:port-forward` with the
//! destination (`forward.rs`); an exec that needs approval waits (hold
//! mode, the caller told on stderr) or is refused naming its request. The
//! output of shells and commands is masked on its way to the caller
//! (`masking.rs`) and recorded as asciicast (`relay.rs`); everything is in
//! the evidence log. Agent, X11 and remote forwarding are refused.

mod agent;
mod back;
mod ca;
mod caller;
mod channel;
mod forward;
mod host_key;
mod listener;
mod masking;
mod relay;
mod remote;
mod sftp;
mod target;
mod upstream;

pub use ca::{CertificateAuthority, Issued, CA_KEY_FILE};
pub use host_key::{fingerprint, load_or_create_host_key, HOST_KEY_FILE};
pub use listener::SshGateway;
pub use masking::ssh_masking;
pub use target::{parse_pinned_keys, SshTarget, TargetCredential};

use gatehouse_mask::MaskingEngine;
use gatehouse_policy::PolicyHandle;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The SSH listener's settings.
pub struct SshSettings {
    /// The gateway's host key (what callers pin).
    pub host_key: russh::keys::PrivateKey,
    /// The `ssh` connections, by name.
    pub connections: HashMap<String, Arc<SshTarget>>,
    /// The policy.
    pub policy: Arc<PolicyHandle>,
    /// Masks what records keep for connections without their own masking.
    pub record_masking: Arc<MaskingEngine>,
    /// Where recordings are kept.
    pub recordings: PathBuf,
    /// A caller connection with no traffic this long is closed.
    pub idle_timeout: Duration,
    /// Keepalives are sent to a quiet caller this often.
    pub keepalive: Duration,
    /// At most this many caller connections at once.
    pub max_connections: usize,
    /// How long a caller has to authenticate.
    pub login_timeout: Duration,
    /// The CA whose certificates callers may log in with.
    pub ca: CertificateAuthority,
}

/// Errors of the SSH adapter.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    /// The SSH library failed.
    #[error("ssh: {0}")]
    Ssh(#[from] russh::Error),
    /// A key could not be read or made.
    #[error("{0}")]
    Key(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}
