//! Why a token was refused, in words safe to show its bearer.

use thiserror::Error;

/// Longest text taken from an unverified token into a refusal.
const SHOWN: usize = 200;

/// Text from a token not yet verified (its `iss`, `alg`, `kid`), made safe
/// to echo into an error and the evidence log: control characters replaced,
/// at most 200 characters. Anyone can send a token; the refusal must not
/// carry 16 KiB of their choosing.
pub(crate) fn unverified(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(SHOWN)
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect();
    if text.chars().nth(SHOWN).is_some() {
        out.push('…');
    }
    out
}

/// One reason a workload token is refused. Texts never contain the token,
/// and name only what the bearer already holds or may know (the expected
/// audience, the key id, how long ago it expired).
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum TokenProblem {
    /// Not a well-formed JWS.
    #[error("not a well-formed JWT: {0}")]
    Malformed(String),
    /// `alg: none`.
    #[error("unsigned tokens (alg none) are never accepted")]
    Unsigned,
    /// An HMAC algorithm.
    #[error("{0} tokens are signed with a shared secret, which gatehouse never accepts; the issuer must sign with an asymmetric key")]
    Hmac(String),
    /// An algorithm name nobody knows.
    #[error("unknown signature algorithm {0:?}")]
    UnknownAlgorithm(String),
    /// An algorithm this issuer is not allowed to use.
    #[error("algorithm {alg} is not allowed for this issuer (allowed: {allowed})")]
    AlgorithmNotAllowed {
        /// The token's algorithm.
        alg: String,
        /// The configured allow-list.
        allowed: String,
    },
    /// No `iss`.
    #[error("the token has no iss claim")]
    NoIssuer,
    /// An issuer this gateway does not trust.
    #[error("issuer {0} is not trusted by this gateway")]
    UntrustedIssuer(String),
    /// The `kid` is not among the issuer's keys, even after a refresh.
    #[error("signing key {0:?} is not among the issuer's published keys")]
    UnknownKey(String),
    /// No `kid` and no key of the right type.
    #[error("the token names no key (kid) and the issuer publishes no {0} key")]
    NoFittingKey(String),
    /// No `kid` and several candidate keys.
    #[error("the token names no key (kid) and the issuer publishes {0} keys that could fit")]
    NoKid(usize),
    /// Keys could never be fetched.
    #[error("the issuer's signing keys are unavailable ({0}); try again later")]
    KeysUnavailable(String),
    /// The key cannot verify the algorithm the token claims.
    #[error("key {kid:?} is an {kind} key, which cannot verify {alg}")]
    KeyMismatch {
        /// The key id.
        kid: String,
        /// The key's type.
        kind: &'static str,
        /// The token's algorithm.
        alg: String,
    },
    /// The signature does not verify.
    #[error("signature does not verify with key {0:?}")]
    BadSignature(String),
    /// `exp` has passed.
    #[error("token expired {0} ago")]
    Expired(String),
    /// `nbf` lies ahead.
    #[error("token is not valid for another {0}")]
    NotYetValid(String),
    /// `iat` lies ahead.
    #[error("token issued {0} in the future; check the issuer's and the gateway's clocks")]
    IssuedInFuture(String),
    /// A required claim is absent.
    #[error("required claim {0} is missing")]
    MissingClaim(String),
    /// A claim has the wrong type or value.
    #[error("claim {claim} is invalid: {reason}")]
    BadClaim {
        /// The claim.
        claim: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// `aud` names none of the accepted audiences.
    #[error("audience mismatch: expected {expected}, token is for {got}")]
    Audience {
        /// Accepted audiences.
        expected: String,
        /// What the token names.
        got: String,
    },
    /// `tid` is not the pinned tenant.
    #[error("tenant mismatch: this gateway accepts tenant {0} only")]
    Tenant(String),
    /// The subject claim cannot name an identity.
    #[error("subject claim {0} is not usable: use 1-256 printable characters")]
    BadSubject(String),
}
