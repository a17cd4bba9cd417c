use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Prefix of admin keys, so they are recognisable in a leak scan.
pub const ADMIN_KEY_PREFIX: &str = "gatehouse_admin_";

/// The hash of the gateway's admin key; the key itself is not kept in memory.
#[derive(Clone)]
pub struct AdminKey {
    hash: [u8; 32],
}

impl std::fmt::Debug for AdminKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminKey(<hash>)")
    }
}

impl AdminKey {
    /// Generates a new key text.
    pub fn generate_text() -> String {
        let mut b = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut b);
        format!("{ADMIN_KEY_PREFIX}{}", hex::encode(b))
    }

    /// Remembers the hash of `text`.
    pub fn from_text(text: &str) -> Self {
        Self {
            hash: Sha256::digest(text.trim().as_bytes()).into(),
        }
    }

    /// Whether `presented` is the key (constant time).
    pub fn matches(&self, presented: &str) -> bool {
        let h: [u8; 32] = Sha256::digest(presented.trim().as_bytes()).into();
        bool::from(h.ct_eq(&self.hash))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_only_the_key() {
        let text = AdminKey::generate_text();
        let k = AdminKey::from_text(&text);
        assert!(k.matches(&text));
        assert!(!k.matches(&AdminKey::generate_text()));
        assert!(!k.matches(""));
    }
}
