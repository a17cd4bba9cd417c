//! An issuer's published signing keys: cached, refreshed periodically and on
//! an unknown `kid`, with refreshes rate-limited so a flood of tokens naming
//! made-up keys cannot hammer the issuer.

use super::spec::IssuerSettings;
use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::Algorithm;
use ring::signature;
use serde_json::Value;
use std::sync::{Arc, RwLock};
use tokio::time::Instant;

/// Fetches an issuer's JWKS document (`{"keys": [...]}`).
#[async_trait]
pub trait KeyFetcher: Send + Sync {
    /// The issuer's current JWKS, parsed as JSON; the error says what failed,
    /// for operators and callers (it must not contain secrets).
    async fn fetch(&self, issuer: &IssuerSettings) -> Result<Value, String>;
}

/// The family of a published key, which decides the algorithms it can verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl KeyKind {
    pub(crate) fn verifies(self, alg: Algorithm) -> bool {
        use Algorithm::*;
        match self {
            Self::Rsa => matches!(alg, RS256 | RS384 | RS512 | PS256 | PS384 | PS512),
            Self::P256 => alg == ES256,
            Self::P384 => alg == ES384,
            Self::Ed25519 => alg == EdDSA,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Rsa => "RSA",
            Self::P256 => "EC P-256",
            Self::P384 => "EC P-384",
            Self::Ed25519 => "Ed25519",
        }
    }
}

/// A public key in the form ring verifies with.
pub(crate) enum PublicKey {
    /// RSA modulus and exponent, big-endian.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// An EC point (`0x04 || x || y`) or an Ed25519 key (`x`).
    Raw(Vec<u8>),
}

/// One usable published key.
pub(crate) struct PublishedKey {
    pub kid: Option<String>,
    pub kind: KeyKind,
    /// The `alg` the JWK pins, if any.
    pub alg: Option<Algorithm>,
    pub key: PublicKey,
}

impl PublishedKey {
    /// Whether `sig` is this key's signature of `msg` under `alg` (which
    /// the caller has checked the key can verify). ring does the
    /// arithmetic; RSA keys under 2048 bits never verify.
    pub(crate) fn verifies(&self, alg: Algorithm, msg: &[u8], sig: &[u8]) -> bool {
        use Algorithm::*;
        match &self.key {
            PublicKey::Rsa { n, e } => {
                let params = match alg {
                    RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
                    RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
                    RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
                    PS256 => &signature::RSA_PSS_2048_8192_SHA256,
                    PS384 => &signature::RSA_PSS_2048_8192_SHA384,
                    PS512 => &signature::RSA_PSS_2048_8192_SHA512,
                    _ => return false,
                };
                signature::RsaPublicKeyComponents { n, e }
                    .verify(params, msg, sig)
                    .is_ok()
            }
            PublicKey::Raw(point) => {
                let algorithm: &dyn signature::VerificationAlgorithm = match alg {
                    ES256 => &signature::ECDSA_P256_SHA256_FIXED,
                    ES384 => &signature::ECDSA_P384_SHA384_FIXED,
                    EdDSA => &signature::ED25519,
                    _ => return false,
                };
                signature::UnparsedPublicKey::new(algorithm, point)
                    .verify(msg, sig)
                    .is_ok()
            }
        }
    }
}

fn b64(field: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(field.trim_end_matches('=')).ok()
}

/// The key material of a JWK, checked for size.
fn public_key(params: &AlgorithmParameters) -> Option<PublicKey> {
    match params {
        AlgorithmParameters::RSA(p) => Some(PublicKey::Rsa {
            n: b64(&p.n)?,
            e: b64(&p.e)?,
        }),
        AlgorithmParameters::EllipticCurve(p) => {
            let len = match p.curve {
                EllipticCurve::P256 => 32,
                EllipticCurve::P384 => 48,
                _ => return None,
            };
            let (x, y) = (b64(&p.x)?, b64(&p.y)?);
            if x.len() != len || y.len() != len {
                return None;
            }
            let mut point = Vec::with_capacity(1 + 2 * len);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            Some(PublicKey::Raw(point))
        }
        AlgorithmParameters::OctetKeyPair(p) => {
            let x = b64(&p.x)?;
            (x.len() == 32).then_some(PublicKey::Raw(x))
        }
        _ => None,
    }
}

/// The keys as last fetched.
#[derive(Default)]
pub(crate) struct KeySnapshot {
    pub keys: Vec<Arc<PublishedKey>>,
    /// When the keys were last fetched successfully.
    pub fetched_at: Option<Instant>,
    /// Why the last fetch failed, if it did.
    pub last_error: Option<String>,
}

/// Parses a JWKS document, keeping the asymmetric signing keys it can use.
/// Keys of other types, encryption keys and malformed keys are skipped (a
/// JWKS may legitimately carry keys for other purposes).
pub(crate) fn parse_jwks(doc: &Value) -> Result<Vec<Arc<PublishedKey>>, String> {
    let keys = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("the JWKS has no \"keys\" array")?;
    let mut out = Vec::new();
    for k in keys {
        let Ok(jwk) = serde_json::from_value::<Jwk>(k.clone()) else {
            continue;
        };
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            continue;
        }
        let kind = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => KeyKind::Rsa,
            AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
                EllipticCurve::P256 => KeyKind::P256,
                EllipticCurve::P384 => KeyKind::P384,
                _ => continue,
            },
            AlgorithmParameters::OctetKeyPair(okp) => match okp.curve {
                EllipticCurve::Ed25519 => KeyKind::Ed25519,
                _ => continue,
            },
            // Symmetric keys are never used: a shared secret is not a public key.
            // Key types added to jsonwebtoken later are skipped likewise.
            _ => continue,
        };
        let alg = match jwk.common.key_algorithm {
            None => None,
            Some(a) => match a.to_string().parse::<Algorithm>() {
                Ok(a) => Some(a),
                // An encryption algorithm (RSA-OAEP…): not a signing key.
                Err(_) => continue,
            },
        };
        let Some(key) = public_key(&jwk.algorithm) else {
            continue;
        };
        out.push(Arc::new(PublishedKey {
            kid: jwk.common.key_id.clone(),
            kind,
            alg,
            key,
        }));
    }
    Ok(out)
}

/// The outcome of looking a key up.
pub(crate) enum KeyLookup {
    Found(Arc<PublishedKey>),
    /// Keys are known, but none has this `kid`.
    Unknown,
    /// No keys could ever be fetched: the provider is unreachable.
    Unavailable(String),
    /// No `kid` in the token and more than one candidate key.
    Ambiguous(usize),
}

/// One issuer's key cache.
pub(crate) struct KeyCache {
    issuer: Arc<IssuerSettings>,
    fetcher: Arc<dyn KeyFetcher>,
    /// Held only to read or swap the `Arc`, never across an await.
    snapshot: RwLock<Arc<KeySnapshot>>,
    /// Single flight for fetches; holds when the last fetch was attempted.
    /// An async mutex on purpose: concurrent misses wait for the one fetch
    /// in flight instead of each starting their own.
    fetching: tokio::sync::Mutex<Option<Instant>>,
}

impl KeyCache {
    pub(crate) fn new(issuer: Arc<IssuerSettings>, fetcher: Arc<dyn KeyFetcher>) -> Self {
        Self {
            issuer,
            fetcher,
            snapshot: RwLock::new(Arc::new(KeySnapshot::default())),
            fetching: tokio::sync::Mutex::new(None),
        }
    }

    pub(crate) fn snapshot(&self) -> Arc<KeySnapshot> {
        // A poisoned lock still holds a valid Arc: keep using it.
        self.snapshot
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn find(snap: &KeySnapshot, kid: Option<&str>, alg: Algorithm) -> KeyLookup {
        let mut fits = snap.keys.iter().filter(|k| match kid {
            Some(kid) => k.kid.as_deref() == Some(kid),
            None => k.kind.verifies(alg),
        });
        match (fits.next(), kid) {
            // With a kid, the first key naming it (kids are unique in a sane JWKS).
            (Some(k), Some(_)) => KeyLookup::Found(k.clone()),
            // Without one, only a single key of the right type will do.
            (Some(k), None) => match fits.count() {
                0 => KeyLookup::Found(k.clone()),
                more => KeyLookup::Ambiguous(more + 1),
            },
            (None, _) => match (&snap.last_error, snap.keys.is_empty()) {
                // Nothing was ever fetched: the provider is unreachable.
                (Some(e), true) => KeyLookup::Unavailable(e.clone()),
                _ => KeyLookup::Unknown,
            },
        }
    }

    /// The key for a token's `kid`, refreshing once (rate-limited) on a miss.
    pub(crate) async fn key_for(&self, kid: Option<&str>, alg: Algorithm) -> KeyLookup {
        let first = Self::find(&self.snapshot(), kid, alg);
        if !matches!(first, KeyLookup::Unknown | KeyLookup::Unavailable(_)) {
            return first;
        }
        self.refresh(false).await;
        Self::find(&self.snapshot(), kid, alg)
    }

    /// Fetches the keys now if `force`, else only when the last attempt is
    /// older than `min_refresh_interval`. A failed fetch keeps the keys
    /// already known: valid tokens keep working while the issuer is down.
    /// Returns whether a fetch was made.
    pub(crate) async fn refresh(&self, force: bool) -> bool {
        let started = Instant::now();
        let mut last = self.fetching.lock().await;
        if let Some(at) = *last {
            // Someone else fetched while this caller waited for the lock.
            if at >= started {
                return false;
            }
            if !force && at.elapsed() < self.issuer.min_refresh_interval {
                return false;
            }
        }
        *last = Some(Instant::now());
        let result = self
            .fetcher
            .fetch(&self.issuer)
            .await
            .and_then(|doc| parse_jwks(&doc));
        let old = self.snapshot();
        let next = match result {
            Ok(keys) if keys.is_empty() => KeySnapshot {
                keys: old.keys.clone(),
                fetched_at: old.fetched_at,
                last_error: Some("the issuer publishes no usable signing key".into()),
            },
            Ok(keys) => KeySnapshot {
                keys,
                fetched_at: Some(Instant::now()),
                last_error: None,
            },
            Err(e) => KeySnapshot {
                keys: old.keys.clone(),
                fetched_at: old.fetched_at,
                last_error: Some(e),
            },
        };
        match &next.last_error {
            Some(e) => {
                tracing::warn!(issuer = %self.issuer.name, error = %e, cached_keys = next.keys.len(), "could not fetch the issuer's signing keys")
            }
            None => {
                tracing::info!(issuer = %self.issuer.name, keys = next.keys.len(), "fetched the issuer's signing keys")
            }
        }
        *self.snapshot.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(next);
        true
    }
}
