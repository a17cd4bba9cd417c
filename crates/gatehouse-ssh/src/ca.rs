//! The gateway's SSH certificate authority: short-lived user certificates
//! for callers who exchanged a token for one (`gatehouse ssh login`), and
//! the checks a certificate passes at login. A certificate carries the
//! identity it was issued to in an extension the gateway reads back (it
//! signed it); the core then checks that identity's credential again.

use crate::SshError;
use gatehouse_core::{Identity, IdentitySource, Timestamp};
use russh::keys::ssh_key::certificate::{Builder, CertType};
use russh::keys::ssh_key::Certificate;
use russh::keys::{PrivateKey, PublicKey};
use std::path::Path;
use std::time::Duration;

/// The CA key's file name in the data directory.
pub const CA_KEY_FILE: &str = "ssh_ca_ed25519_key";
/// The extension that carries the identity (JSON).
const IDENTITY_EXTENSION: &str = "identity@gatehouse";
/// How far back a certificate is valid from, for clocks a little behind.
const SKEW: Duration = Duration::from_secs(60);

/// The gateway's SSH CA.
#[derive(Clone)]
pub struct CertificateAuthority {
    key: PrivateKey,
}

/// A certificate signed for a caller.
pub struct Issued {
    /// `ssh-ed25519-cert-v01@openssh.com AAAA…`, for `<key>-cert.pub`.
    pub certificate: String,
    /// Its serial.
    pub serial: u64,
    /// When it stops being valid.
    pub valid_before: Timestamp,
    /// Its principal (the identity's subject).
    pub principal: String,
}

impl CertificateAuthority {
    /// The CA whose key is at `path`, made there when there is none.
    pub fn load_or_create(path: &Path) -> Result<Self, SshError> {
        Ok(Self {
            key: crate::host_key::load_or_create_key(path, "gatehouse ssh ca")?,
        })
    }

    /// The CA's public key (what a host would trust with `TrustedUserCAKeys`).
    pub fn public_key(&self) -> &PublicKey {
        self.key.public_key()
    }

    /// Signs a user certificate for `key`, issued to `identity`, valid for
    /// `ttl` from `now` (never past an OIDC token's own expiry).
    pub fn sign(
        &self,
        identity: &Identity,
        key: &PublicKey,
        ttl: Duration,
        now: Timestamp,
    ) -> Result<Issued, SshError> {
        let now_s = u64::try_from(now.unix_millis() / 1000).unwrap_or(0);
        let mut until = now_s + ttl.as_secs();
        if let IdentitySource::Oidc(o) = &identity.source {
            until = until.min(u64::try_from(o.expires_at).unwrap_or(0));
        }
        if until <= now_s {
            return Err(SshError::Key(
                "the token expires now: get a fresh one, then ask for a certificate".into(),
            ));
        }
        let mut nonce = [0u8; 32];
        let mut serial = [0u8; 8];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut nonce);
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut serial);
        let serial = u64::from_be_bytes(serial);
        let json = serde_json::to_string(identity)
            .map_err(|e| SshError::Key(format!("encoding the identity: {e}")))?;
        let bad =
            |e: russh::keys::ssh_key::Error| SshError::Key(format!("signing a certificate: {e}"));
        let mut b = Builder::new(
            nonce.to_vec(),
            key.key_data().clone(),
            now_s.saturating_sub(SKEW.as_secs()),
            until,
        )
        .map_err(bad)?;
        b.serial(serial).map_err(bad)?;
        b.cert_type(CertType::User).map_err(bad)?;
        b.key_id(identity.subject.clone()).map_err(bad)?;
        b.valid_principal(identity.subject.clone()).map_err(bad)?;
        for ext in ["permit-pty", "permit-port-forwarding"] {
            b.extension(ext, "").map_err(bad)?;
        }
        b.extension(IDENTITY_EXTENSION, json).map_err(bad)?;
        let cert = b.sign(&self.key).map_err(bad)?;
        Ok(Issued {
            certificate: cert.to_openssh().map_err(bad)?,
            serial,
            valid_before: Timestamp::from_unix_millis(
                i64::try_from(until).unwrap_or(i64::MAX) * 1000,
            ),
            principal: identity.subject.clone(),
        })
    }

    /// The identity a certificate presented at login was issued to, if
    /// this CA signed it for a user, it is valid at `now` (Unix seconds),
    /// names that identity's subject as its principal and asks for no
    /// option the gateway does not know. `Err` says why not.
    pub fn verify(&self, cert: &Certificate, now: u64) -> Result<Identity, String> {
        if cert.signature_key() != self.key.public_key().key_data() {
            return Err("the certificate was not signed by this gateway's SSH CA".into());
        }
        cert.verify_signature()
            .map_err(|e| format!("the certificate's signature does not verify: {e}"))?;
        if cert.cert_type() != CertType::User {
            return Err("a host certificate cannot log in".into());
        }
        if now < cert.valid_after() || now >= cert.valid_before() {
            return Err("the certificate has expired (or is not valid yet): run `gatehouse ssh login` again".into());
        }
        if let Some((name, _)) = cert.critical_options().iter().next() {
            return Err(format!("the certificate asks for the critical option {name:?}, which the gateway does not apply"));
        }
        let json = cert
            .extensions()
            .get(IDENTITY_EXTENSION)
            .ok_or("the certificate carries no gatehouse identity")?;
        let identity: Identity = serde_json::from_str(json)
            .map_err(|e| format!("the certificate's identity cannot be read: {e}"))?;
        if !cert.valid_principals().contains(&identity.subject) {
            return Err("the certificate's principals do not name its identity".into());
        }
        Ok(identity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> PrivateKey {
        use russh::keys::ssh_key::private::{Ed25519Keypair, KeypairData};
        PrivateKey::new(
            KeypairData::Ed25519(Ed25519Keypair::from_seed(&[seed; 32])),
            "",
        )
        .unwrap()
    }

    #[test]
    fn a_certificate_reads_back_its_identity_and_nothing_else_passes() {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::load_or_create(&dir.path().join(CA_KEY_FILE)).unwrap();
        let other = CertificateAuthority { key: key(9) };
        let id = Identity::with_service_token("deploy-job", vec!["ops".into()], "0011");
        let now = Timestamp::now();
        let issued = ca
            .sign(&id, key(1).public_key(), Duration::from_secs(300), now)
            .unwrap();
        let cert = Certificate::from_openssh(&issued.certificate).unwrap();
        let t = u64::try_from(now.unix_millis() / 1000).unwrap();
        assert_eq!(ca.verify(&cert, t).unwrap(), id);
        assert_eq!(cert.key_id(), "deploy-job");
        assert!(ca.verify(&cert, t + 301).unwrap_err().contains("expired"));
        assert!(other
            .verify(&cert, t)
            .unwrap_err()
            .contains("not signed by this gateway"));
        // A certificate with a critical option is refused.
        let mut b = Builder::new(
            vec![0; 32],
            key(2).public_key().key_data().clone(),
            t - 10,
            t + 100,
        )
        .unwrap();
        b.cert_type(CertType::User).unwrap();
        b.valid_principal("deploy-job").unwrap();
        b.critical_option("force-command", "true").unwrap();
        b.extension(IDENTITY_EXTENSION, serde_json::to_string(&id).unwrap())
            .unwrap();
        let forced = b.sign(&ca.key).unwrap();
        assert!(ca.verify(&forced, t).unwrap_err().contains("force-command"));
    }
}
