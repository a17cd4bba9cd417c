use crate::Timestamp;
use serde::{Deserialize, Serialize};

/// The public identifier of a service token (the part of the token that is not
/// secret, used to find its record).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TokenId(pub String);

impl std::fmt::Display for TokenId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A stored service token. It holds only a hash of the secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// Public id, also embedded in the token text.
    pub id: TokenId,
    /// Identity subject the token authenticates as.
    pub identity: String,
    /// Groups granted to the identity.
    pub groups: Vec<String>,
    /// Hex SHA-256 of the secret part; never the secret itself. Not part of
    /// the API's JSON (empty when read from there).
    #[serde(skip_serializing, default)]
    pub secret_hash: String,
    /// When the token was created.
    pub created_at: Timestamp,
    /// After this instant the token is refused.
    pub expires_at: Timestamp,
    /// When the token was revoked, if it was.
    pub revoked_at: Option<Timestamp>,
    /// For a registered SSH public key (the credential is the key, not a
    /// secret): its SHA256 fingerprint. `None` for a service token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_key: Option<String>,
}

impl TokenRecord {
    /// Whether the token may be used at `now`.
    pub fn is_usable_at(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }
}
