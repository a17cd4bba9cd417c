//! Gatehouse identity: turns a credential a caller presents into an
//! [`AuthenticatedIdentity`].
//!
//! That credential is a Gatehouse service token or an OIDC workload token
//! from a configured issuer; [`Authenticator`] tells them apart by shape.
//! Only this crate can construct an [`AuthenticatedIdentity`], so holding one
//! is proof that a credential was checked.

mod authenticator;
pub mod oidc;
mod service_token;
mod ssh_key;

pub use authenticator::{Authenticator, CredentialKind};
pub use ssh_key::{register_ssh_key, verify_certified, verify_ssh_key};

pub use service_token::{
    looks_like_service_token, mint_service_token, verify_service_token, MintedToken,
    ServiceTokenSecret, TOKEN_PREFIX,
};

use gatehouse_core::{Identity, StoreError};
use thiserror::Error;

/// An identity whose credential was verified. Constructed only by this crate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthenticatedIdentity {
    identity: Identity,
}

impl AuthenticatedIdentity {
    /// The verified identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Consumes the proof, keeping the identity.
    pub fn into_identity(self) -> Identity {
        self.identity
    }
}

/// Why a credential was not accepted. Display texts are safe to show the
/// caller: they never contain the credential.
#[derive(Debug, Error)]
pub enum AuthError {
    /// The credential has no recognised format.
    #[error("the password is neither a Gatehouse service token nor a JWT")]
    UnrecognisedCredential,
    /// No token has this id, or its secret does not match.
    #[error("token not recognised; check that you copied the whole token, or ask for a new one")]
    UnknownToken,
    /// The token was revoked.
    #[error("token {id} was revoked {ago} ago; ask for a new token")]
    Revoked {
        /// Public id of the token.
        id: String,
        /// How long ago, human readable.
        ago: String,
    },
    /// The token expired.
    #[error("token {id} expired {ago} ago; ask for a new token")]
    Expired {
        /// Public id of the token.
        id: String,
        /// How long ago, human readable.
        ago: String,
    },
    /// A workload token was refused.
    #[error("{}", match issuer {
        Some(i) => format!("OIDC token refused (issuer {i}): {problem}"),
        None => format!("OIDC token refused: {problem}"),
    })]
    InvalidToken {
        /// The configured issuer the token claimed, when it named a trusted one.
        issuer: Option<String>,
        /// What is wrong.
        problem: oidc::TokenProblem,
    },
    /// No registered SSH key is this one.
    #[error("this SSH key is not registered to any identity; an admin registers it with `gatehouse ssh register-key`; or log in with a token")]
    UnknownSshKey,
    /// A certificate outlived the OIDC token it was issued for.
    #[error("the certificate's OIDC token (issuer {issuer}) has expired; run `gatehouse ssh login` again")]
    CertifiedTokenExpired {
        /// The issuer's configured name.
        issuer: String,
    },
    /// A JWT was presented but no issuer is configured.
    #[error("this gateway trusts no OIDC issuer; use a Gatehouse service token, or ask the operator to add an [[identity.oidc]] issuer")]
    OidcNotConfigured,
    /// The store could not be read: fail closed.
    #[error("identity store unavailable; try again later")]
    Store(#[from] StoreError),
}

impl AuthError {
    /// Whether the caller's credential is at fault (not the gateway's store
    /// or an issuer's keys being unreachable): what counts as a failed login.
    pub fn caused_by_caller(&self) -> bool {
        match self {
            AuthError::Store(_) => false,
            AuthError::InvalidToken { problem, .. } => {
                !matches!(problem, oidc::TokenProblem::KeysUnavailable(_))
            }
            _ => true,
        }
    }
}

/// A subject or group name is not acceptable.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("invalid {what} {value:?}: use 1-128 characters of letters, digits and . _ - @ :")]
pub struct InvalidName {
    /// `identity` or `group`.
    pub what: &'static str,
    /// The rejected value.
    pub value: String,
}

/// Checks an identity or group name: 1-128 characters from a conservative set,
/// so names are safe in logs, policies and CLI output.
pub fn validate_name(what: &'static str, value: &str) -> Result<(), InvalidName> {
    let ok = !value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@' | b':'));
    if ok {
        Ok(())
    } else {
        Err(InvalidName {
            what,
            value: value.to_string(),
        })
    }
}

/// Renders a duration in the largest sensible unit: `4m`, `3h`, `2d`.
pub(crate) fn human_ago(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86_399 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}
