use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Who is calling: a stable subject, its groups, and how it proved itself.
///
/// This is plain data, used by records and the policy engine. Proof that a
/// caller *is* this identity is `gatehouse_identity::AuthenticatedIdentity`,
/// which only the identity crate can construct.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Identity {
    /// The stable name of the caller, e.g. `ci-deploy`, or for an OIDC token
    /// `<issuer name>/<subject claim>`, e.g. `github/repo:org/app:ref:refs/heads/main`.
    pub subject: String,
    /// Groups the caller belongs to, e.g. `ci`, `deployers`, `entra/Data.Reader`.
    pub groups: Vec<String>,
    /// The credential that established the identity.
    pub source: IdentitySource,
}

impl Identity {
    /// The identity a Gatehouse service token (by its public id) names.
    pub fn with_service_token(
        subject: impl Into<String>,
        groups: Vec<String>,
        token_id: impl Into<String>,
    ) -> Self {
        Self {
            subject: subject.into(),
            groups,
            source: IdentitySource::ServiceToken {
                token_id: token_id.into(),
            },
        }
    }

    /// The delegation the credential carried, if any.
    pub fn delegation(&self) -> Option<&Delegation> {
        match &self.source {
            IdentitySource::ServiceToken { .. } => None,
            IdentitySource::Oidc(o) => o.delegation.as_ref(),
        }
    }
}

/// The kind of credential an identity was established from.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum IdentitySource {
    /// A Gatehouse-issued service token, by its public id.
    ServiceToken {
        /// The token's public id (never the secret).
        token_id: String,
    },
    /// An OIDC/JWT workload token from a configured issuer.
    Oidc(Box<OidcSource>),
}

/// What a validated OIDC token said about its bearer (never the token itself).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OidcSource {
    /// The configured issuer's name (`[[identity.oidc]] name`).
    pub issuer: String,
    /// The token's `iss`.
    pub iss: String,
    /// The token's subject claim, as the token gave it.
    pub sub: String,
    /// The OAuth client (application) the token was issued to, when the
    /// token says (`azp`, `appid`, `client_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The token's own id (`jti`, `uti`), for correlating with the issuer's logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
    /// The token's expiry, Unix seconds.
    pub expires_at: i64,
    /// Claims copied as attributes, by attribute name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub claims: BTreeMap<String, String>,
    /// Who acts, for whom, when the token says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegation: Option<Delegation>,
}

/// Delegation carried by a token: RFC 8693 actor chain and/or a configured
/// "on behalf of" claim.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Delegation {
    /// RFC 8693 `act`: the party acting for the token's subject, current actor
    /// first, then the actors before it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actors: Vec<Actor>,
    /// The party the token's subject acts for, from the issuer's configured
    /// `on_behalf_of_claim`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<String>,
}

/// One actor of an RFC 8693 actor chain.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Actor {
    /// The actor's `sub`.
    pub sub: String,
    /// The actor's `iss`, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
}

impl Delegation {
    /// `a > b > c`: the actor chain, current actor first.
    pub fn actor_chain(&self) -> String {
        let subs: Vec<&str> = self.actors.iter().map(|a| a.sub.as_str()).collect();
        subs.join(" > ")
    }
}
