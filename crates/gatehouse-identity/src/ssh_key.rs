//! SSH credentials, checked the way service tokens are.
//!
//! A *registered key* is a record of the tokens table whose credential is
//! an SSH public key instead of a secret: its id is derived from the key
//! (so a presented key finds its record), its `secret_hash` is the key's
//! SHA-256 (compared in constant time), and it is revoked and expires like
//! any token. A *certificate* the gateway signed carries the identity it
//! was issued to; that identity is checked again at each login: a service
//! token it came from must still be usable, an OIDC token's expiry is kept.

use crate::{human_ago, validate_name, AuthError, AuthenticatedIdentity, InvalidName};
use gatehouse_core::{Identity, IdentitySource, Store, Timestamp, TokenId, TokenRecord};
use sha2::{Digest, Sha256};
use std::time::Duration;
use subtle::ConstantTimeEq;

/// The record id of the key whose wire encoding is `blob`.
fn key_id(blob: &[u8]) -> TokenId {
    let mut h = Sha256::new();
    h.update(b"gatehouse ssh key\0");
    h.update(blob);
    TokenId(hex::encode(&h.finalize()[..8]))
}

/// A record registering the SSH public key `blob` (its wire encoding,
/// fingerprint `fingerprint`) to `identity` with `groups`, valid for `ttl`.
pub fn register_ssh_key(
    identity: &str,
    groups: &[String],
    ttl: Duration,
    now: Timestamp,
    blob: &[u8],
    fingerprint: &str,
) -> Result<TokenRecord, InvalidName> {
    validate_name("identity", identity)?;
    for g in groups {
        validate_name("group", g)?;
    }
    let mut groups = groups.to_vec();
    groups.sort();
    groups.dedup();
    Ok(TokenRecord {
        id: key_id(blob),
        identity: identity.to_string(),
        groups,
        secret_hash: hex::encode(Sha256::digest(blob)),
        created_at: now,
        expires_at: now.plus(ttl),
        revoked_at: None,
        ssh_key: Some(fingerprint.to_string()),
    })
}

/// The identity a registered SSH key (wire encoding `blob`) proves at `now`.
pub async fn verify_ssh_key(
    store: &dyn Store,
    blob: &[u8],
    now: Timestamp,
) -> Result<AuthenticatedIdentity, AuthError> {
    let record = store
        .find_token(&key_id(blob))
        .await?
        .filter(|r| r.ssh_key.is_some())
        .ok_or(AuthError::UnknownSshKey)?;
    let presented = hex::encode(Sha256::digest(blob));
    if !bool::from(presented.as_bytes().ct_eq(record.secret_hash.as_bytes())) {
        return Err(AuthError::UnknownSshKey);
    }
    usable(&record, now)?;
    Ok(AuthenticatedIdentity {
        identity: Identity::with_service_token(record.identity, record.groups, record.id.0),
    })
}

fn usable(record: &TokenRecord, now: Timestamp) -> Result<(), AuthError> {
    if let Some(at) = record.revoked_at {
        return Err(AuthError::Revoked {
            id: record.id.0.clone(),
            ago: human_ago(now.unix_millis() - at.unix_millis()),
        });
    }
    if now >= record.expires_at {
        return Err(AuthError::Expired {
            id: record.id.0.clone(),
            ago: human_ago(now.unix_millis() - record.expires_at.unix_millis()),
        });
    }
    Ok(())
}

/// The identity a certificate the gateway signed was issued to, checked
/// again at `now`: the service token (or registered key) it came from must
/// still be usable (its groups are read afresh); an OIDC identity must not
/// have outlived its token.
pub async fn verify_certified(
    store: &dyn Store,
    identity: Identity,
    now: Timestamp,
) -> Result<AuthenticatedIdentity, AuthError> {
    match &identity.source {
        IdentitySource::ServiceToken { token_id } => {
            let record = store
                .find_token(&TokenId(token_id.clone()))
                .await?
                .ok_or(AuthError::UnknownToken)?;
            usable(&record, now)?;
            Ok(AuthenticatedIdentity {
                identity: Identity::with_service_token(record.identity, record.groups, record.id.0),
            })
        }
        IdentitySource::Oidc(o) => {
            if o.expires_at.saturating_mul(1000) <= now.unix_millis() {
                return Err(AuthError::CertifiedTokenExpired {
                    issuer: o.issuer.clone(),
                });
            }
            Ok(AuthenticatedIdentity { identity })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_finds_its_record_and_no_other() {
        let now = Timestamp::from_unix_millis(1_000_000);
        let r = register_ssh_key(
            "backup",
            &["ops".into()],
            Duration::from_secs(60),
            now,
            b"key-a",
            "SHA256:a",
        )
        .unwrap();
        assert_eq!(r.id, key_id(b"key-a"));
        assert_ne!(r.id, key_id(b"key-b"));
        assert_eq!(r.ssh_key.as_deref(), Some("SHA256:a"));
        assert!(
            register_ssh_key("bad name", &[], Duration::from_secs(60), now, b"k", "f").is_err()
        );
    }
}
