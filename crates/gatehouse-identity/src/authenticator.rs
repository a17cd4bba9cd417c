//! One entry point for every credential a caller may present.

use crate::oidc::{looks_like_jwt, OidcVerifier};
use crate::{looks_like_service_token, verify_service_token, AuthError, AuthenticatedIdentity};
use gatehouse_core::{Store, Timestamp};
use std::sync::Arc;

/// The kind of a presented credential, told by its shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialKind {
    /// `gatehouse_st_…`.
    ServiceToken,
    /// A JWS compact token (`eyJ….….…`).
    Jwt,
    /// Neither.
    Unknown,
}

impl CredentialKind {
    /// Tells a credential's kind without checking it.
    pub fn of(credential: &str) -> Self {
        if looks_like_service_token(credential) {
            Self::ServiceToken
        } else if looks_like_jwt(credential) {
            Self::Jwt
        } else {
            Self::Unknown
        }
    }
}

/// Checks service tokens against the store and workload tokens against the
/// configured OIDC issuers. Cheap to clone.
#[derive(Clone)]
pub struct Authenticator {
    store: Arc<dyn Store>,
    oidc: Option<Arc<OidcVerifier>>,
}

impl Authenticator {
    /// Service tokens from `store`; OIDC tokens when `oidc` is given.
    pub fn new(store: Arc<dyn Store>, oidc: Option<Arc<OidcVerifier>>) -> Self {
        Self { store, oidc }
    }

    /// The OIDC verifier, when issuers are configured.
    pub fn oidc(&self) -> Option<&Arc<OidcVerifier>> {
        self.oidc.as_ref()
    }

    /// The identity a registered SSH key (its wire encoding) proves at `now`.
    pub async fn ssh_key(
        &self,
        blob: &[u8],
        now: Timestamp,
    ) -> Result<AuthenticatedIdentity, AuthError> {
        crate::verify_ssh_key(self.store.as_ref(), blob, now).await
    }

    /// The identity a certificate the gateway signed was issued to, checked
    /// again at `now`.
    pub async fn certified(
        &self,
        identity: gatehouse_core::Identity,
        now: Timestamp,
    ) -> Result<AuthenticatedIdentity, AuthError> {
        crate::verify_certified(self.store.as_ref(), identity, now).await
    }

    /// Checks `credential` at `now`.
    pub async fn authenticate(
        &self,
        credential: &str,
        now: Timestamp,
    ) -> Result<AuthenticatedIdentity, AuthError> {
        match CredentialKind::of(credential) {
            CredentialKind::ServiceToken | CredentialKind::Unknown => {
                verify_service_token(self.store.as_ref(), credential, now).await
            }
            CredentialKind::Jwt => match &self.oidc {
                Some(v) => v.verify(credential, now).await,
                None => Err(AuthError::OidcNotConfigured),
            },
        }
    }
}
