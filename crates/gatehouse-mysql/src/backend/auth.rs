//! The answers to the backend's authentication challenges, one per plugin
//! the gateway logs in with.

use ed25519_dalek::hazmat::{raw_sign, ExpandedSecretKey};
use ed25519_dalek::VerifyingKey;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

/// `mysql_native_password`: SHA1(pw) XOR SHA1(challenge ‖ SHA1(SHA1(pw))).
pub(crate) fn native(password: &str, challenge: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let stage1 = Sha1::digest(password.as_bytes());
    let stage2 = Sha1::digest(stage1);
    let mut h = Sha1::new();
    h.update(challenge.get(..20).unwrap_or(challenge));
    h.update(stage2);
    let mix = h.finalize();
    stage1.iter().zip(mix.iter()).map(|(a, b)| a ^ b).collect()
}

/// `caching_sha2_password` (fast path): SHA256(pw) XOR
/// SHA256(SHA256(SHA256(pw)) ‖ challenge).
pub(crate) fn caching_sha2(password: &str, challenge: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let stage1 = Sha256::digest(password.as_bytes());
    let stage2 = Sha256::digest(stage1);
    let mut h = Sha256::new();
    h.update(stage2);
    h.update(challenge.get(..20).unwrap_or(challenge));
    let mix = h.finalize();
    stage1.iter().zip(mix.iter()).map(|(a, b)| a ^ b).collect()
}

/// MariaDB's `client_ed25519`: an Ed25519 signature of the challenge with
/// the key whose expanded form is SHA-512 of the password (MariaDB hashes
/// the password itself where Ed25519 hashes a 32-byte seed).
pub(crate) fn ed25519(password: &str, challenge: &[u8]) -> Vec<u8> {
    let expanded: [u8; 64] = Sha512::digest(password.as_bytes()).into();
    let key = ExpandedSecretKey::from_bytes(&expanded);
    let public = VerifyingKey::from(&key);
    raw_sign::<Sha512>(&key, challenge, &public)
        .to_bytes()
        .to_vec()
}

/// `caching_sha2_password`'s full authentication without TLS: the
/// password (NUL-terminated) XOR the challenge, encrypted with the
/// server's RSA key under OAEP (SHA-1), as MySQL 8 reads it. The key is
/// the one pinned in the configuration, never one the server offers.
pub(crate) fn rsa_encrypted(
    password: &str,
    challenge: &[u8],
    key: &rsa::RsaPublicKey,
) -> Result<Vec<u8>, rsa::Error> {
    let challenge = challenge.get(..20).unwrap_or(challenge);
    let mut plain = cleartext(password);
    if !challenge.is_empty() {
        for (i, b) in plain.iter_mut().enumerate() {
            *b ^= challenge[i % challenge.len()];
        }
    }
    key.encrypt(&mut rand::thread_rng(), rsa::Oaep::new::<Sha1>(), &plain)
}

/// The cleartext password as `mysql_clear_password` and the full
/// `caching_sha2_password` exchange over TLS send it.
pub(crate) fn cleartext(password: &str) -> Vec<u8> {
    let mut out = password.as_bytes().to_vec();
    out.push(0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_password_scrambles_as_the_server_checks_it() {
        // The server keeps SHA1(SHA1(pw)) and checks
        // SHA1(reply XOR SHA1(challenge ‖ stored)) == stored.
        let challenge = [7u8; 20];
        let reply = native("secret", &challenge);
        let stored = Sha1::digest(Sha1::digest(b"secret"));
        let mut h = Sha1::new();
        h.update(challenge);
        h.update(stored);
        let mix = h.finalize();
        let stage1: Vec<u8> = reply.iter().zip(mix.iter()).map(|(a, b)| a ^ b).collect();
        assert_eq!(Sha1::digest(&stage1), stored);
        assert!(native("", &challenge).is_empty());
    }

    #[test]
    fn caching_sha2_scrambles_as_the_server_checks_them() {
        // The server caches SHA256(SHA256(pw)) and checks
        // SHA256(reply XOR SHA256(cached ‖ challenge)) == cached.
        let challenge = [3u8; 20];
        let reply = caching_sha2("secret", &challenge);
        let cached = Sha256::digest(Sha256::digest(b"secret"));
        let mut h = Sha256::new();
        h.update(cached);
        h.update(challenge);
        let mix = h.finalize();
        let stage1: Vec<u8> = reply.iter().zip(mix.iter()).map(|(a, b)| a ^ b).collect();
        assert_eq!(Sha256::digest(&stage1), cached);
        assert!(caching_sha2("", &challenge).is_empty());
        assert_eq!(cleartext("pw"), b"pw\0");
    }

    #[test]
    fn the_rsa_exchange_decrypts_to_the_password_xor_the_challenge() {
        use rsa::{Oaep, RsaPrivateKey};
        let private = RsaPrivateKey::new(&mut rand::thread_rng(), 1024).unwrap();
        let challenge = [5u8; 20];
        let sealed = rsa_encrypted("secret", &challenge, &private.to_public_key()).unwrap();
        let plain = private.decrypt(Oaep::new::<Sha1>(), &sealed).unwrap();
        let clear: Vec<u8> = plain
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ challenge[i % 20])
            .collect();
        assert_eq!(clear, b"secret\0");
    }

    #[test]
    fn ed25519_signatures_verify_with_the_key_mariadb_stores() {
        use ed25519_dalek::Verifier;
        let challenge = [9u8; 32];
        let sig = ed25519("secret", &challenge);
        let expanded: [u8; 64] = Sha512::digest(b"secret").into();
        let public = VerifyingKey::from(&ExpandedSecretKey::from_bytes(&expanded));
        let sig = ed25519_dalek::Signature::from_slice(&sig).unwrap();
        assert!(public.verify(&challenge, &sig).is_ok());
    }
}
