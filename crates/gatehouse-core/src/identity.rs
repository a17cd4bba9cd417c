use serde::{Deserialize, Serialize};

/// Who is calling: a stable subject, its groups, and how it proved itself.
///
/// This is plain data, used by records and (later) by the policy engine. Proof
/// that a caller *is* this identity is `gatehouse_identity::AuthenticatedIdentity`,
/// which only the identity crate can construct.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The stable name of the caller, e.g. `ci-deploy`.
    pub subject: String,
    /// Groups the caller belongs to, e.g. `ci`, `deployers`.
    pub groups: Vec<String>,
    /// The credential that established the identity.
    pub source: IdentitySource,
}

/// The kind of credential an identity was established from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum IdentitySource {
    /// A Gatehouse-issued service token, by its public id.
    ServiceToken {
        /// The token's public id (never the secret).
        token_id: String,
    },
}
