//! How a sensitive value is replaced.

use crate::MaskError;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;

/// A masking strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// A fixed mask naming what was found: `[masked:card]`. Reveals nothing,
    /// not even the length.
    Redact,
    /// Keep the last `n` letters or digits, star the others, keep separators:
    /// `**** **** **** 1111`.
    Partial(u8),
    /// A keyed hash (HMAC-SHA-256, first 64 bits): equal inputs give equal
    /// outputs, so masked values still join and group.
    Hash,
    /// SQL NULL. Inside free text, where a part cannot be NULL, the whole
    /// value becomes NULL.
    Null,
    /// The fixed mask, base64-encoded (`W21hc2tlZDpzZWNyZXRd` for
    /// `[masked:secret]`): for values a client decodes as base64, such as a
    /// Kubernetes Secret's `data`, which a typed client refuses otherwise.
    RedactBase64,
    /// A JSON document held in a string (Kubernetes'
    /// `last-applied-configuration` annotation): masked as a document of
    /// its own by the same rules and detectors, and written back as a
    /// string, so a client that reads it still can; a value that is not a
    /// JSON object, or one inside another, is redacted.
    JsonDocument,
}

impl Strategy {
    /// Parses `redact`, `redact-base64`, `null`, `hash`, `partial` (keeps 4)
    /// or `partial:N`.
    pub fn parse(s: &str) -> Result<Self, MaskError> {
        let bad = || MaskError::Strategy(s.to_string());
        Ok(match s {
            "redact" => Strategy::Redact,
            "redact-base64" => Strategy::RedactBase64,
            "null" => Strategy::Null,
            "hash" => Strategy::Hash,
            "partial" => Strategy::Partial(4),
            _ => {
                let n = s.strip_prefix("partial:").ok_or_else(bad)?;
                let n: u8 = n.parse().map_err(|_| bad())?;
                if n == 0 || n > 32 {
                    return Err(bad());
                }
                Strategy::Partial(n)
            }
        })
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Strategy::Redact => f.write_str("redact"),
            Strategy::RedactBase64 => f.write_str("redact-base64"),
            Strategy::JsonDocument => f.write_str("json-document"),
            Strategy::Partial(n) => write!(f, "partial:{n}"),
            Strategy::Hash => f.write_str("hash"),
            Strategy::Null => f.write_str("null"),
        }
    }
}

/// The secret key of the `hash` strategy.
#[derive(Clone)]
pub struct HashKey([u8; 32]);

impl HashKey {
    /// A key from 32 bytes.
    pub fn new(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Parses 64 hex digits (surrounding whitespace ignored).
    pub fn from_hex(s: &str) -> Result<Self, MaskError> {
        let mut k = [0u8; 32];
        hex::decode_to_slice(s.trim(), &mut k).map_err(|_| MaskError::HashKey)?;
        Ok(Self(k))
    }

    fn digest(&self, value: &[u8]) -> [u8; 8] {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(value);
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; 8];
        out.copy_from_slice(&full[..8]);
        out
    }
}

impl fmt::Debug for HashKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HashKey(..)")
    }
}

/// What replaces a value or a part of one.
pub(crate) enum Replacement {
    /// Bytes written to the output.
    Written,
    /// The whole value must become NULL.
    Null,
}

/// Writes the replacement for `value` (found by `label`) to `out`.
pub(crate) fn apply(
    strategy: Strategy,
    label: &str,
    value: &[u8],
    key: &HashKey,
    out: &mut Vec<u8>,
) -> Replacement {
    match strategy {
        Strategy::Null => return Replacement::Null,
        // The JSON reader masks the document inside; anywhere else (inside
        // another such document, or a value that is not JSON) it is redacted.
        Strategy::Redact | Strategy::JsonDocument => redact(label, out),
        Strategy::RedactBase64 => {
            let mut mask = Vec::with_capacity(label.len() + 9);
            redact(label, &mut mask);
            base64_into(&mask, out);
        }
        Strategy::Hash => {
            out.extend_from_slice(b"[hash:");
            let d = key.digest(value);
            let mut hexed = [0u8; 16];
            // 8 bytes always fit 16 hex digits.
            let _ = hex::encode_to_slice(d, &mut hexed);
            out.extend_from_slice(&hexed);
            out.push(b']');
        }
        Strategy::Partial(keep) => partial(value, keep as usize, out),
    }
    Replacement::Written
}

/// Standard base64 (with padding) of `bytes`, appended to `out`.
fn base64_into(bytes: &[u8], out: &mut Vec<u8>) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]);
            } else {
                out.push(b'=');
            }
        }
    }
}

/// The fixed mask `[masked:label]`, also used where NULL cannot stand (inside text).
pub(crate) fn redact(label: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"[masked:");
    out.extend_from_slice(label.as_bytes());
    out.push(b']');
}

/// Stars every letter or digit but the last `keep` ones; ASCII punctuation
/// and spaces stay, so the shape remains readable. A non-ASCII character
/// or a control character becomes one star.
fn partial(value: &[u8], keep: usize, out: &mut Vec<u8>) {
    let alnum = value.iter().filter(|b| b.is_ascii_alphanumeric()).count();
    // Never keep more than half: a short value is not given away.
    let keep = keep.min(alnum / 2);
    let mut starred = alnum - keep;
    let mut i = 0;
    while i < value.len() {
        let b = value[i];
        if b.is_ascii_alphanumeric() {
            if starred > 0 {
                out.push(b'*');
                starred -= 1;
            } else {
                out.push(b);
            }
            i += 1;
        } else if b < 0x80 {
            // A control character (a decoded `\u0000` among them) could end
            // or break the text it is written into.
            out.push(if b < 0x20 || b == 0x7f { b'*' } else { b });
            i += 1;
        } else {
            out.push(b'*');
            i += 1;
            while i < value.len() && value[i] & 0xC0 == 0x80 {
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(s: Strategy, v: &str) -> String {
        let mut out = Vec::new();
        let key = HashKey::new([7; 32]);
        match apply(s, "card", v.as_bytes(), &key, &mut out) {
            Replacement::Written => String::from_utf8(out).unwrap(),
            Replacement::Null => "NULL".into(),
        }
    }

    #[test]
    fn strategies() {
        assert_eq!(run(Strategy::Redact, "4111"), "[masked:card]");
        assert_eq!(
            run(Strategy::Partial(4), "4111 1111 1111 1234"),
            "**** **** **** 1234"
        );
        assert_eq!(run(Strategy::Partial(4), "123-45-6789"), "***-**-6789");
        assert_eq!(run(Strategy::Partial(4), "abc"), "**c");
        assert_eq!(run(Strategy::Partial(2), "é1234"), "***34");
        assert_eq!(run(Strategy::Partial(2), "a\0b\n12"), "****12");
        assert_eq!(run(Strategy::Null, "x"), "NULL");
        let h1 = run(Strategy::Hash, "alice@example.com");
        assert_eq!(h1, run(Strategy::Hash, "alice@example.com"));
        assert_ne!(h1, run(Strategy::Hash, "bob@example.com"));
        assert!(h1.starts_with("[hash:") && h1.len() == 23, "{h1}");
    }

    #[test]
    fn parse() {
        assert_eq!(Strategy::parse("partial").unwrap(), Strategy::Partial(4));
        assert_eq!(Strategy::parse("partial:6").unwrap(), Strategy::Partial(6));
        for bad in ["partial:0", "partial:x", "mask", "", "partial:99"] {
            assert!(Strategy::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Strategy::parse("partial:6").unwrap().to_string(),
            "partial:6"
        );
    }
}

#[cfg(test)]
mod base64_tests {
    use super::*;

    #[test]
    fn the_base64_mask_decodes_to_the_fixed_mask() {
        for (input, want) in [
            (&b""[..], ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"[masked:secret-data]", "W21hc2tlZDpzZWNyZXQtZGF0YV0="),
        ] {
            let mut out = Vec::new();
            base64_into(input, &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), want);
        }
        let mut out = Vec::new();
        apply(
            Strategy::RedactBase64,
            "secret-data",
            b"czNjcmV0",
            &HashKey::new([0; 32]),
            &mut out,
        );
        assert_eq!(out, b"W21hc2tlZDpzZWNyZXQtZGF0YV0=");
        assert_eq!(
            Strategy::parse("redact-base64").unwrap(),
            Strategy::RedactBase64
        );
    }
}
