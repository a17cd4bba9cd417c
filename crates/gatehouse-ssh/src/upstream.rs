//! The gateway's own SSH connection to a target: the host's key checked
//! against the pinned ones (anything else refuses the connection, naming
//! the key it offered), then the gateway's key or password for the
//! account. One per caller connection, shared by its channels.

use crate::target::{SshTarget, TargetCredential};
use russh::client::{self, ChannelOpenHandle, Msg, Session};
use russh::keys::{PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{Channel, ChannelOpenFailure};
use std::sync::{Arc, Mutex};

/// The target's connection as the gateway holds it.
pub(crate) type Upstream = client::Handle<HostCheck>;

/// Checks the key the host offers against the pinned ones.
pub(crate) struct HostCheck {
    target: Arc<SshTarget>,
    /// Bridges agent connections the host opens to the caller, when the
    /// session allowed agent forwarding.
    bridge: Option<crate::back::Bridge>,
    /// The fingerprint of a key refused, for the error.
    refused: Arc<Mutex<Option<String>>>,
}

impl client::Handler for HostCheck {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        offered: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let key = match offered {
            PublicKeyOrCertificate::PublicKey { key, .. } => key,
            PublicKeyOrCertificate::Certificate(c) => {
                *self.refused.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!(
                    "a host certificate (signed by {})",
                    crate::fingerprint(&c.signature_key().clone().into())
                ));
                return Ok(false);
            }
        };
        if self.target.host_keys.iter().any(|p| p.matches(key)) {
            return Ok(true);
        }
        *self.refused.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!(
            "{} {}",
            key.algorithm().as_str(),
            crate::fingerprint(key)
        ));
        Ok(false)
    }

    // The host may open no channel towards the gateway (but an agent
    // connection or a remote forward the session allowed): nothing of the host reaches the
    // caller that the caller did not open and the policy did not decide
    // (russh's defaults would accept these).

    async fn server_channel_open_forwarded_tcpip(
        &mut self,
        channel: Channel<Msg>,
        connected_address: &str,
        connected_port: u32,
        originator_address: &str,
        originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        crate::remote::host_opened(
            self.bridge.clone(),
            channel,
            (connected_address.to_string(), connected_port),
            (originator_address.to_string(), originator_port),
            reply,
        )
        .await;
        Ok(())
    }

    async fn server_channel_open_forwarded_streamlocal(
        &mut self,
        _channel: Channel<Msg>,
        _socket_path: &str,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        refuse(reply).await
    }

    async fn server_channel_open_agent_forward(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        crate::agent::host_opened(self.bridge.clone(), channel, reply).await;
        Ok(())
    }

    async fn server_channel_open_session(
        &mut self,
        _channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        refuse(reply).await
    }

    async fn server_channel_open_direct_tcpip(
        &mut self,
        _channel: Channel<Msg>,
        _host_to_connect: &str,
        _port_to_connect: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        refuse(reply).await
    }

    async fn server_channel_open_direct_streamlocal(
        &mut self,
        _channel: Channel<Msg>,
        _socket_path: &str,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        refuse(reply).await
    }

    async fn server_channel_open_x11(
        &mut self,
        _channel: Channel<Msg>,
        _originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        refuse(reply).await
    }
}

async fn refuse(reply: ChannelOpenHandle) -> Result<(), russh::Error> {
    tracing::warn!("ssh: the host opened a channel towards the gateway; refused");
    reply
        .reject(ChannelOpenFailure::AdministrativelyProhibited)
        .await;
    Ok(())
}

/// Reaches `target` as `user`, within its `connect_timeout` (connection,
/// key exchange and login together). `Err` says why in words for the
/// caller (never the credential).
pub(crate) async fn connect(
    target: Arc<SshTarget>,
    user: &str,
    bridge: Option<crate::back::Bridge>,
) -> Result<Upstream, String> {
    let limit = target.connect_timeout;
    let where_ = format!("{} ({}:{})", target.name, target.host, target.port);
    match tokio::time::timeout(limit, reach(target, user, bridge)).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "cannot reach {where_}: not logged in within {}s (connect_timeout)",
            limit.as_secs()
        )),
    }
}

async fn reach(
    target: Arc<SshTarget>,
    user: &str,
    bridge: Option<crate::back::Bridge>,
) -> Result<Upstream, String> {
    let config = Arc::new(client::Config {
        inactivity_timeout: None,
        keepalive_interval: Some(std::time::Duration::from_secs(30)),
        nodelay: true,
        ..client::Config::default()
    });
    let refused = Arc::new(Mutex::new(None));
    let check = HostCheck {
        target: target.clone(),
        bridge,
        refused: refused.clone(),
    };
    let addr = (target.host.as_str(), target.port);
    let where_ = format!("{} ({}:{})", target.name, target.host, target.port);
    let mut handle = match client::connect(config, addr, check).await {
        Err(e) => {
            let offered = refused.lock().unwrap_or_else(|p| p.into_inner()).take();
            return Err(match offered {
                Some(key) => format!(
                    "{where_} offered the host key {key}, which is not the one pinned for it \
                     (host_key): the gateway does not connect; if the host's key was changed on \
                     purpose, pin the new one"
                ),
                None => format!("cannot reach {where_}: {e}"),
            });
        }
        Ok(h) => h,
    };
    let result = match &target.credential {
        TargetCredential::Key(key) => {
            // Only an RSA key needs the host's signature algorithms (and
            // asking waits up to a second for them).
            let hash = if key.algorithm().is_rsa() {
                handle
                    .best_supported_rsa_hash()
                    .await
                    .map_err(|e| format!("{where_}: {e}"))?
                    .flatten()
            } else {
                None
            };
            handle
                .authenticate_publickey(user, PrivateKeyWithHashAlg::new(key.clone(), hash))
                .await
        }
        TargetCredential::Password(p) => handle.authenticate_password(user, p.as_ref()).await,
    };
    match result {
        Ok(r) if r.success() => Ok(handle),
        Ok(_) => Err(format!(
            "{where_} did not accept the gateway's credential for the account {user}: \
             check that its key is in ~{user}/.ssh/authorized_keys there"
        )),
        Err(e) => Err(format!("{where_}: logging in as {user}: {e}")),
    }
}
