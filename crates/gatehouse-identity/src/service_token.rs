//! Gatehouse service tokens.
//!
//! Text form: `gatehouse_st_<id>_<secret>`, where `id` is 16 lowercase hex
//! characters (public, used to find the record) and `secret` is 64 lowercase
//! hex characters (32 random bytes). The store keeps only SHA-256 of the
//! secret; a high-entropy secret needs no slow hash. Comparison is constant
//! time.

use crate::{human_ago, validate_name, AuthError, AuthenticatedIdentity, InvalidName};
use gatehouse_core::{Identity, Store, Timestamp, TokenId, TokenRecord};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::time::Duration;
use subtle::ConstantTimeEq;

/// The prefix every service token starts with, so scanners and humans recognise it.
pub const TOKEN_PREFIX: &str = "gatehouse_st_";
const ID_HEX: usize = 16;
const SECRET_HEX: usize = 64;

/// A token's full text. Shown once at creation; its `Debug` never prints it.
pub struct ServiceTokenSecret(String);

impl ServiceTokenSecret {
    /// The token text, to hand to the caller exactly once.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ServiceTokenSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServiceTokenSecret(<redacted>)")
    }
}

/// A newly minted token: the record to store and the text to show once.
#[derive(Debug)]
pub struct MintedToken {
    /// What the store keeps.
    pub record: TokenRecord,
    /// What the caller receives.
    pub secret: ServiceTokenSecret,
}

/// Creates a token for `identity` with `groups`, valid for `ttl` from `now`.
pub fn mint_service_token(
    identity: &str,
    groups: &[String],
    ttl: Duration,
    now: Timestamp,
) -> Result<MintedToken, InvalidName> {
    validate_name("identity", identity)?;
    for g in groups {
        validate_name("group", g)?;
    }
    let mut id = [0u8; ID_HEX / 2];
    let mut secret = [0u8; SECRET_HEX / 2];
    let mut rng = rand::rngs::OsRng;
    rng.fill_bytes(&mut id);
    rng.fill_bytes(&mut secret);
    let id = hex::encode(id);
    let secret_hex = hex::encode(secret);
    let mut groups = groups.to_vec();
    groups.sort();
    groups.dedup();
    let record = TokenRecord {
        id: TokenId(id.clone()),
        identity: identity.to_string(),
        groups,
        secret_hash: hash_secret(&secret_hex),
        created_at: now,
        expires_at: now.plus(ttl),
        revoked_at: None,
        ssh_key: None,
    };
    Ok(MintedToken {
        record,
        secret: ServiceTokenSecret(format!("{TOKEN_PREFIX}{id}_{secret_hex}")),
    })
}

/// Whether `credential` has the shape of a service token (cheap, no store access).
pub fn looks_like_service_token(credential: &str) -> bool {
    split(credential).is_some()
}

/// Verifies a service token against the store at time `now`.
///
/// The secret is checked before revocation or expiry is disclosed, so only a
/// holder of the real token learns its state.
pub async fn verify_service_token(
    store: &dyn Store,
    credential: &str,
    now: Timestamp,
) -> Result<AuthenticatedIdentity, AuthError> {
    let (id, secret) = split(credential).ok_or(AuthError::UnrecognisedCredential)?;
    let record = store
        .find_token(&TokenId(id.to_string()))
        .await?
        .ok_or(AuthError::UnknownToken)?;
    let presented = hash_secret(secret);
    if !bool::from(presented.as_bytes().ct_eq(record.secret_hash.as_bytes())) {
        return Err(AuthError::UnknownToken);
    }
    if let Some(at) = record.revoked_at {
        return Err(AuthError::Revoked {
            id: record.id.0,
            ago: human_ago(now.unix_millis() - at.unix_millis()),
        });
    }
    if now >= record.expires_at {
        return Err(AuthError::Expired {
            id: record.id.0,
            ago: human_ago(now.unix_millis() - record.expires_at.unix_millis()),
        });
    }
    Ok(AuthenticatedIdentity {
        identity: Identity::with_service_token(record.identity, record.groups, record.id.0),
    })
}

fn split(credential: &str) -> Option<(&str, &str)> {
    let rest = credential.strip_prefix(TOKEN_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let lower_hex = |s: &str| s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    (id.len() == ID_HEX && secret.len() == SECRET_HEX && lower_hex(id) && lower_hex(secret))
        .then_some((id, secret))
}

fn hash_secret(secret_hex: &str) -> String {
    hex::encode(Sha256::digest(secret_hex.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn minted_token_has_prefix_and_parses() {
        let m = mint_service_token(
            "ci-deploy",
            &["ci".into(), "deployers".into(), "ci".into()],
            Duration::from_secs(60),
            Timestamp::from_unix_millis(0),
        )
        .unwrap();
        let text = m.secret.expose();
        assert!(text.starts_with(TOKEN_PREFIX));
        assert!(looks_like_service_token(text));
        let (id, secret) = split(text).unwrap();
        assert_eq!(id, m.record.id.0);
        assert_eq!(hash_secret(secret), m.record.secret_hash);
        assert!(!m.record.secret_hash.contains(secret));
        assert_eq!(
            m.record.groups,
            vec!["ci".to_string(), "deployers".to_string()]
        );
        assert_eq!(m.record.expires_at.unix_millis(), 60_000);
        assert_eq!(format!("{:?}", m.secret), "ServiceTokenSecret(<redacted>)");
    }

    #[test]
    fn rejects_bad_names() {
        let now = Timestamp::from_unix_millis(0);
        let ttl = Duration::from_secs(1);
        assert!(mint_service_token("", &[], ttl, now).is_err());
        assert!(mint_service_token("a b", &[], ttl, now).is_err());
        assert!(mint_service_token("ok", &["bad;group".into()], ttl, now).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics_the_parser(s in ".{0,200}") {
            let _ = looks_like_service_token(&s);
        }
    }
}
