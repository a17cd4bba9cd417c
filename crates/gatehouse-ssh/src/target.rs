//! An `ssh` connection: the host the gateway reaches, the accounts callers
//! may ask for, the gateway's own credential there, and the host's key,
//! pinned.

use gatehouse_mask::MaskingEngine;
use russh::keys::{PrivateKey, PublicKey};
use std::sync::Arc;
use std::time::Duration;

/// A configured `[[connection]] kind = "ssh"`.
#[derive(Clone)]
pub struct SshTarget {
    /// Its name (what callers use as their SSH user name).
    pub name: String,
    /// The host.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// The account used when the caller names none.
    pub user: String,
    /// Every account callers may ask for (`user` among them).
    pub users: Vec<String>,
    /// How the gateway logs in to the host.
    pub credential: TargetCredential,
    /// The host's keys: any one of them is accepted, nothing else is.
    pub host_keys: Vec<PinnedKey>,
    /// How long reaching the host may take.
    pub connect_timeout: Duration,
    /// The most a shell's or command's recording may hold; the channel is
    /// cut when it is reached (what is not recorded is not relayed).
    pub recording_limit: usize,
    /// Masks shell and command output (the caller's and the recording's).
    pub masking: Arc<MaskingEngine>,
}

/// The gateway's credential on the host: never shown to callers.
#[derive(Clone)]
pub enum TargetCredential {
    /// A private key (`private_key_file`).
    Key(Arc<PrivateKey>),
    /// A password (`password_env` or `password_file`).
    Password(Arc<str>),
}

/// A host key as pinned: the key, or its SHA-256 fingerprint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PinnedKey {
    /// The whole public key.
    Key(PublicKey),
    /// `SHA256:…` as `ssh-keygen -l` prints it.
    Fingerprint(String),
}

impl PinnedKey {
    /// Whether `key` is this one.
    pub fn matches(&self, key: &PublicKey) -> bool {
        match self {
            Self::Key(k) => k.key_data() == key.key_data(),
            Self::Fingerprint(f) => *f == crate::fingerprint(key),
        }
    }
}

/// Reads pinned host keys: one per line, as a public key
/// (`ssh-ed25519 AAAA… [comment]`), a `known_hosts` line (`host
/// ssh-ed25519 AAAA…`) or a fingerprint (`SHA256:…`). Blank lines and
/// `#` comments are skipped. `Err` names the line and why.
pub fn parse_pinned_keys(text: &str) -> Result<Vec<PinnedKey>, String> {
    let mut keys = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = |why: String| format!("line {}: {why}", n + 1);
        if line.starts_with('@') {
            return Err(at(
                "known_hosts markers (@cert-authority, @revoked) are not supported: pin the host's own key".into(),
            ));
        }
        if let Some(f) = line.strip_prefix("SHA256:") {
            let f = f.split_whitespace().next().unwrap_or("");
            if f.len() != 43
                || !f
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
            {
                return Err(at(format!(
                    "SHA256:{f} is not a SHA-256 key fingerprint (43 base64 characters)"
                )));
            }
            keys.push(PinnedKey::Fingerprint(format!("SHA256:{f}")));
            continue;
        }
        let key = PublicKey::from_openssh(line).or_else(|first| {
            // A known_hosts line: the host names come first.
            match line.split_once(char::is_whitespace) {
                Some((_, rest)) => PublicKey::from_openssh(rest.trim_start()),
                None => Err(first),
            }
        });
        match key {
            Ok(k) => keys.push(PinnedKey::Key(k)),
            Err(e) => {
                return Err(at(format!(
                    "not a public key, known_hosts line or SHA256 fingerprint ({e})"
                )))
            }
        }
    }
    if keys.is_empty() {
        return Err("no host key: give the target's public key (ssh-keyscan prints it) or its SHA256 fingerprint".into());
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGyLEyZ/ozN2sLXt1a0WTqQxSSTxA4JC8Z8VLnlnXTPo";

    #[test]
    fn keys_known_hosts_lines_and_fingerprints_are_pinned() {
        let k = parse_pinned_keys(KEY).unwrap();
        let PinnedKey::Key(key) = &k[0] else { panic!() };
        let fp = crate::fingerprint(key);
        let text = format!("# pinned\n[127.0.0.1]:2222 {KEY}\n\n{fp}\n{KEY} root@host\n");
        let all = parse_pinned_keys(&text).unwrap();
        assert_eq!(all.len(), 3);
        assert!(all.iter().all(|p| p.matches(key)));
        let e = parse_pinned_keys("ssh-ed25519 AAAAnope").unwrap_err();
        assert!(e.starts_with("line 1: not a public key"), "{e}");
        let e = parse_pinned_keys("@cert-authority * ssh-ed25519 AAAA").unwrap_err();
        assert!(e.contains("not supported"), "{e}");
        let e = parse_pinned_keys("SHA256:short").unwrap_err();
        assert!(e.contains("not a SHA-256"), "{e}");
        assert!(parse_pinned_keys("# nothing\n")
            .unwrap_err()
            .contains("no host key"));
    }
}
