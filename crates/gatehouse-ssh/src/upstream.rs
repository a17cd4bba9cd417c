//! The gateway's own SSH connection to a target: the host's key checked
//! against the pinned ones (anything else refuses the connection, naming
//! the key it offered), then the gateway's key or password for the
//! account. One per caller connection, shared by its channels.

use crate::target::{SshTarget, TargetCredential};
use russh::client;
use russh::keys::{PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use std::sync::{Arc, Mutex};

/// The target's connection as the gateway holds it.
pub(crate) type Upstream = client::Handle<HostCheck>;

/// Checks the key the host offers against the pinned ones.
pub(crate) struct HostCheck {
    target: Arc<SshTarget>,
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
}

/// Reaches `target` as `user`. `Err` says why in words for the caller
/// (never the credential).
pub(crate) async fn connect(target: Arc<SshTarget>, user: &str) -> Result<Upstream, String> {
    let config = Arc::new(client::Config {
        inactivity_timeout: None,
        keepalive_interval: Some(std::time::Duration::from_secs(30)),
        nodelay: true,
        ..client::Config::default()
    });
    let refused = Arc::new(Mutex::new(None));
    let check = HostCheck {
        target: target.clone(),
        refused: refused.clone(),
    };
    let addr = (target.host.as_str(), target.port);
    let where_ = format!("{} ({}:{})", target.name, target.host, target.port);
    let connecting = client::connect(config, addr, check);
    let mut handle = match tokio::time::timeout(target.connect_timeout, connecting).await {
        Err(_) => {
            return Err(format!(
                "cannot reach {where_}: no answer within {}s",
                target.connect_timeout.as_secs()
            ))
        }
        Ok(Err(e)) => {
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
        Ok(Ok(h)) => h,
    };
    let result = match &target.credential {
        TargetCredential::Key(key) => {
            let hash = handle
                .best_supported_rsa_hash()
                .await
                .map_err(|e| format!("{where_}: {e}"))?
                .flatten();
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
