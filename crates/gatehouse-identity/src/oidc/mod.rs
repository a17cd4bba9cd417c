//! OIDC workload identity: tokens from Entra ID, GitHub Actions, GitLab,
//! Kubernetes, Google or any OIDC issuer, accepted as the caller's credential.
//!
//! Each configured issuer has a key cache ([`keys`]) fed by discovery and
//! JWKS ([`fetch`]); a token is parsed and its algorithm checked
//! ([`token`]), its signature verified against the issuer's key, its times,
//! audience and required claims checked, and its claims mapped to an
//! identity ([`claims`]).

mod claims;
pub mod code_flow;
mod fetch;
mod keys;
mod preset;
mod problem;
mod spec;
mod token;

#[cfg(test)]
mod tests;

pub use code_flow::{CodeFlow, PendingSignIn};
pub use fetch::HttpKeyFetcher;
pub use keys::KeyFetcher;
pub use preset::Preset;
pub use problem::TokenProblem;
pub use spec::{IssuerSettings, IssuerSpec, OneOrMany, DEFAULT_ALGORITHMS};
pub use token::{looks_like_jwt, MAX_TOKEN_LEN};

/// Reads a token's header and claims without verifying it, as a login
/// does before looking up the key: the issuer it names, if it is a JWT at
/// all. For the fuzz targets; never a basis for trust.
#[doc(hidden)]
pub fn inspect_unverified(token: &str) -> Option<String> {
    token::parse(token)
        .ok()
        .and_then(|t| t.iss().map(str::to_string))
}

use crate::{AuthError, AuthenticatedIdentity};
use gatehouse_core::Timestamp;
use keys::KeyCache;
use std::sync::Arc;
use std::time::Duration;

/// What a refresh task or `identity inspect` reports about one issuer's keys.
#[derive(Clone, Debug)]
pub struct KeyStatus {
    /// The issuer's name.
    pub issuer: String,
    /// Usable keys held.
    pub keys: usize,
    /// Why the last fetch failed, if it did.
    pub last_error: Option<String>,
}

/// The trusted issuers and their keys.
pub struct OidcVerifier {
    issuers: Vec<(Arc<IssuerSettings>, KeyCache)>,
}

impl OidcVerifier {
    /// A verifier over `issuers`, each fetching its keys with its fetcher.
    pub fn new(issuers: Vec<(IssuerSettings, Arc<dyn KeyFetcher>)>) -> Self {
        Self {
            issuers: issuers
                .into_iter()
                .map(|(s, fetcher)| {
                    let s = Arc::new(s);
                    let cache = KeyCache::new(s.clone(), fetcher);
                    (s, cache)
                })
                .collect(),
        }
    }

    /// A verifier fetching keys over HTTPS.
    pub fn over_https(issuers: Vec<IssuerSettings>) -> Result<Self, String> {
        let mut with = Vec::with_capacity(issuers.len());
        for i in issuers {
            let f: Arc<dyn KeyFetcher> =
                Arc::new(HttpKeyFetcher::new(&i).map_err(|e| format!("issuer {}: {e}", i.name))?);
            with.push((i, f));
        }
        Ok(Self::new(with))
    }

    /// The configured issuers.
    pub fn issuers(&self) -> impl Iterator<Item = &IssuerSettings> {
        self.issuers.iter().map(|(s, _)| s.as_ref())
    }

    /// Fetches every issuer's keys now; returns each issuer's status.
    pub async fn refresh_all(&self) -> Vec<KeyStatus> {
        let mut out = Vec::with_capacity(self.issuers.len());
        for (s, cache) in &self.issuers {
            cache.refresh(true).await;
            out.push(Self::status(s, cache));
        }
        out
    }

    fn status(s: &IssuerSettings, cache: &KeyCache) -> KeyStatus {
        let snap = cache.snapshot();
        KeyStatus {
            issuer: s.name.clone(),
            keys: snap.keys.len(),
            last_error: snap.last_error.clone(),
        }
    }

    /// Keeps every issuer's keys fresh: refetches each `refresh_interval`,
    /// sooner (`min_refresh_interval`) after a failure. Runs until dropped.
    pub async fn keep_fresh(self: Arc<Self>) {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..self.issuers.len() {
            let me = self.clone();
            tasks.spawn(async move {
                let (s, cache) = &me.issuers[i];
                loop {
                    cache.refresh(true).await;
                    let wait = if cache.snapshot().last_error.is_some() {
                        s.min_refresh_interval
                    } else {
                        s.refresh_interval
                    };
                    tokio::time::sleep(wait.max(Duration::from_secs(1))).await;
                }
            });
        }
        while tasks.join_next().await.is_some() {}
    }

    /// Validates `token` at `now` and returns the identity it proves.
    pub async fn verify(
        &self,
        token: &str,
        now: Timestamp,
    ) -> Result<AuthenticatedIdentity, AuthError> {
        let refuse = |issuer: Option<&str>, problem| AuthError::InvalidToken {
            issuer: issuer.map(str::to_string),
            problem,
        };
        let parsed = token::parse(token).map_err(|p| refuse(None, p))?;
        let iss = parsed
            .iss()
            .ok_or(TokenProblem::NoIssuer)
            .map_err(|p| refuse(None, p))?
            .to_string();
        let Some((settings, cache)) = self
            .issuers
            .iter()
            .find(|(s, _)| s.accepted_issuers.iter().any(|a| a == &iss))
        else {
            return Err(refuse(
                None,
                TokenProblem::UntrustedIssuer(problem::unverified(&iss)),
            ));
        };
        let name = Some(settings.name.as_str());
        if !settings.algorithms.contains(&parsed.alg) {
            let allowed: Vec<String> = settings
                .algorithms
                .iter()
                .map(|a| format!("{a:?}"))
                .collect();
            return Err(refuse(
                name,
                TokenProblem::AlgorithmNotAllowed {
                    alg: format!("{:?}", parsed.alg),
                    allowed: allowed.join(", "),
                },
            ));
        }
        let lookup = cache.key_for(parsed.kid.as_deref(), parsed.alg).await;
        let claims = parsed.verify(lookup).map_err(|p| refuse(name, p))?;
        let skew = i64::try_from(settings.clock_skew.as_secs()).unwrap_or(i64::MAX);
        let now_s = now.unix_millis().div_euclid(1000);
        let exp = token::check_times(&claims, now_s, skew).map_err(|p| refuse(name, p))?;
        token::check_audience(&claims, &settings.audiences).map_err(|p| refuse(name, p))?;
        let identity =
            claims::identity(settings, &iss, &claims, exp).map_err(|p| refuse(name, p))?;
        Ok(AuthenticatedIdentity { identity })
    }
}
