//! `[[connection]] kind = "ssh"`: a host reached over SSH, the accounts
//! callers may ask for, the gateway's own key (or password) there, and
//! the host's key, pinned.

use super::connections::{read_secret, ConnectionSection};
use super::parse_duration;
use gatehouse_ssh::{SshTarget, TargetCredential};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Bytes one shell's or command's recording keeps, unless
/// `recording_limit` says otherwise; and the bounds it must keep to.
const RECORDING_LIMIT: u64 = 64 << 20;
const RECORDING_MIN: u64 = 1 << 20;
const RECORDING_MAX: u64 = 1 << 30;

impl ConnectionSection {
    /// Checks a `kind = "ssh"` connection and reads its key and pinned
    /// host keys. Its masking engine is attached at start.
    pub(super) fn resolve_ssh(
        &self,
        i: usize,
        path: &impl Fn(&str) -> PathBuf,
        problem: &mut dyn FnMut(String, String),
    ) -> Option<SshTarget> {
        let k = |field: &str| format!("connection[{i}].{field}");
        let mut ok = true;
        let mut bad = |key: String, reason: String| {
            ok = false;
            problem(key, reason);
        };
        for (key, set) in [
            ("database", self.database.is_some()),
            ("backend_tls", self.backend_tls.is_some()),
            ("backend_ca", self.backend_ca.is_some()),
            ("url", self.url.is_some()),
            ("auth", self.auth.is_some()),
            ("token_env", self.token_env.is_some()),
            ("token_file", self.token_file.is_some()),
            ("header_name", self.header_name.is_some()),
            ("hosts", !self.hosts.is_empty()),
            ("client_cert", self.client_cert.is_some()),
            ("client_key", self.client_key.is_some()),
            ("record_body_size", self.record_body_size.is_some()),
            ("impersonate", self.impersonate.is_some()),
        ] {
            if set {
                bad(k(key), "not used by ssh connections".into());
            }
        }
        let host = match self.host.as_deref().map(str::trim) {
            Some(h) if !h.is_empty() => h.to_string(),
            Some(_) => {
                bad(k("host"), "must not be empty".into());
                String::new()
            }
            None => {
                bad(
                    k("host"),
                    "missing: the host the gateway reaches over SSH".into(),
                );
                String::new()
            }
        };
        let port = self.port.unwrap_or(22);
        if port == 0 {
            bad(k("port"), "must be between 1 and 65535".into());
        }
        let user = match self.user.as_deref().map(str::trim) {
            Some(u) if !u.is_empty() => u.to_string(),
            _ => {
                bad(
                    k("user"),
                    "missing: the account on the host the gateway logs in to".into(),
                );
                String::new()
            }
        };
        let mut users = vec![user.clone()];
        for (n, u) in self.users.iter().enumerate() {
            if u.trim().is_empty() || u.contains('@') || u.chars().any(char::is_whitespace) {
                bad(
                    k(&format!("users[{n}]")),
                    format!("{u:?} is not an account name"),
                );
            } else if !users.contains(u) {
                users.push(u.clone());
            }
        }
        let credential = match (
            &self.private_key_file,
            &self.password_env,
            &self.password_file,
        ) {
            (Some(f), None, None) => {
                let file = path(f);
                match russh::keys::load_secret_key(&file, None) {
                    Ok(key) => Some(TargetCredential::Key(Arc::new(key))),
                    Err(e) => {
                        bad(
                            k("private_key_file"),
                            format!(
                                "{}: not an unencrypted SSH private key the gateway can read: {e}",
                                file.display()
                            ),
                        );
                        None
                    }
                }
            }
            (Some(_), _, _) => {
                bad(
                    k("private_key_file"),
                    "set either private_key_file or a password (password_env, password_file), not both".into(),
                );
                None
            }
            (None, None, None) => {
                bad(
                    k("private_key_file"),
                    "missing: the gateway's own private key for the host (ssh-keygen -t ed25519 -f …), whose public key is in the account's authorized_keys there".into(),
                );
                None
            }
            (None, _, _) => match read_secret(
                (&self.password_env, "password_env"),
                (&self.password_file, "password_file"),
                "the account's password",
                path,
            ) {
                Ok(p) => Some(TargetCredential::Password(Arc::from(p.as_str()))),
                Err((key, reason)) => {
                    bad(k(key), reason);
                    None
                }
            },
        };
        let pinned = match (&self.host_key, &self.host_key_file) {
            (Some(text), None) => gatehouse_ssh::parse_pinned_keys(text)
                .map_err(|e| bad(k("host_key"), e))
                .ok(),
            (None, Some(f)) => {
                let file = path(f);
                match std::fs::read_to_string(&file) {
                    Ok(text) => gatehouse_ssh::parse_pinned_keys(&text)
                        .map_err(|e| bad(k("host_key_file"), format!("{}: {e}", file.display())))
                        .ok(),
                    Err(e) => {
                        bad(
                            k("host_key_file"),
                            format!("cannot read {}: {e}", file.display()),
                        );
                        None
                    }
                }
            }
            (Some(_), Some(_)) => {
                bad(
                    k("host_key"),
                    "set either host_key or host_key_file, not both".into(),
                );
                None
            }
            (None, None) => {
                bad(
                    k("host_key"),
                    format!("missing: the host's key, pinned (`ssh-keyscan -p {port} {host}` prints it); the gateway never connects to a host whose key it does not know"),
                );
                None
            }
        };
        let connect_timeout = match &self.connect_timeout {
            Some(t) => parse_duration(t)
                .map_err(|r| bad(k("connect_timeout"), r))
                .unwrap_or_default(),
            None => Duration::from_secs(10),
        };
        let recording_limit = match self.recording_limit.as_ref().map(|s| s.bytes()) {
            None => RECORDING_LIMIT,
            Some(Ok(n)) if (RECORDING_MIN..=RECORDING_MAX).contains(&n) => n,
            Some(Ok(_)) => {
                bad(k("recording_limit"), "between 1MiB and 1GiB".into());
                0
            }
            Some(Err(e)) => {
                bad(k("recording_limit"), e);
                0
            }
        };
        if !ok {
            return None;
        }
        Some(SshTarget {
            name: self.name.clone(),
            host,
            port,
            user,
            users,
            credential: credential?,
            host_keys: pinned?,
            connect_timeout,
            recording_limit: usize::try_from(recording_limit).unwrap_or(usize::MAX),
            masking: Arc::new(gatehouse_mask::MaskingEngine::secrets_only()),
        })
    }
}
