//! Canonical JSON: one byte encoding per value, so a hash over an event is
//! reproducible by anyone with any JSON library.
//!
//! The encoding (documented in docs/evidence.md) follows RFC 8785 (JCS) for
//! the values events use: no whitespace; object members sorted by key
//! (compared by their UTF-16 code units, as JCS says); strings as UTF-8 with
//! only `"`, `\` and control characters escaped (`\b \f \n \r \t`, others as
//! `\u00xx`); integers in plain decimal. Events carry no floating-point
//! numbers; one is refused rather than encoded two ways.

use crate::EvidenceError;
use serde_json::Value;
use std::io::Write as _;

/// Appends the canonical encoding of `v` to `out`.
pub fn write(v: &Value, out: &mut Vec<u8>) -> Result<(), EvidenceError> {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            // Writing to a Vec cannot fail.
            if let Some(i) = n.as_i64() {
                let _ = write!(out, "{i}");
            } else if let Some(u) = n.as_u64() {
                let _ = write!(out, "{u}");
            } else {
                return Err(EvidenceError::Encoding(format!(
                    "{n} is not an integer; events carry integers only"
                )));
            }
        }
        Value::String(s) => write_str(s, out),
        Value::Array(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(x, out)?;
            }
            out.push(b']');
        }
        Value::Object(m) => {
            let mut members: Vec<(&String, &Value)> = m.iter().collect();
            // Events build their payloads in key order, so this is mostly a check.
            if !members.is_sorted_by(|a, b| key_order(a.0, b.0).is_le()) {
                members.sort_by(|a, b| key_order(a.0, b.0));
            }
            out.push(b'{');
            for (i, (k, x)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(k, out);
                out.push(b':');
                write(x, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// JCS member order: by UTF-16 code units. For keys below U+D800 (every
/// key events use) that is the order of their UTF-8 bytes, which needs no
/// conversion.
pub(crate) fn key_order(a: &str, b: &str) -> std::cmp::Ordering {
    let below_surrogates = |s: &str| s.chars().all(|c| (c as u32) < 0xD800);
    if a.is_ascii() && b.is_ascii() || below_surrogates(a) && below_surrogates(b) {
        a.as_bytes().cmp(b.as_bytes())
    } else {
        a.encode_utf16().cmp(b.encode_utf16())
    }
}

/// Appends an integer in plain decimal.
pub fn write_u64(n: u64, out: &mut Vec<u8>) {
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{n}");
}

/// The canonical encoding of `v`.
pub fn to_vec(v: &Value) -> Result<Vec<u8>, EvidenceError> {
    let mut out = Vec::with_capacity(256);
    write(v, &mut out)?;
    Ok(out)
}

/// Appends the canonical encoding of the string `s`: runs that need no
/// escape are copied whole (only ASCII bytes are ever escaped, so a run never
/// splits a UTF-8 sequence).
pub fn write_str(s: &str, out: &mut Vec<u8>) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            0x0c => b"\\f",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[run..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{:04x}", b);
        } else {
            out.extend_from_slice(escape);
        }
        run = i + 1;
    }
    out.extend_from_slice(&bytes[run..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorted_compact_escaped() {
        let v = json!({"b": 1, "a": [true, null, "x\"y\\z\n\u{1}é"], "A": -5, "\u{ff61}": {}, "\u{10000}": 0});
        let s = String::from_utf8(to_vec(&v).unwrap()).unwrap();
        // U+10000 is the surrogate pair D800 DC00, which sorts before U+FF61 in
        // UTF-16 (JCS), though after it by code point.
        assert_eq!(
            s,
            "{\"A\":-5,\"a\":[true,null,\"x\\\"y\\\\z\\n\\u0001é\"],\"b\":1,\"\u{10000}\":0,\"\u{ff61}\":{}}"
        );
        assert!(to_vec(&json!({"f": 1.5})).is_err());
    }

    #[test]
    fn strings_and_key_order_agree_with_the_definitions() {
        let samples = [
            "",
            "plain",
            "a\"b",
            "\\",
            "tab\there",
            "\u{0}\u{1f}\u{7f}",
            "é",
            "\u{ff61}",
            "\u{10000}",
            "\u{e000}",
            "\u{d7ff}",
            "mixed \u{10000}\n\"x\"é",
        ];
        for s in samples {
            let mut out = Vec::new();
            write_str(s, &mut out);
            // serde_json escapes exactly what JCS does (lower-case \u00xx).
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(s).unwrap()
            );
            for t in samples {
                assert_eq!(
                    key_order(s, t),
                    s.encode_utf16().cmp(t.encode_utf16()),
                    "{s:?} vs {t:?}"
                );
            }
        }
    }

    #[test]
    fn reparsing_gives_the_same_bytes() {
        let v = json!({"seq": 18446744073709551615u64, "t": "2026-11-22T10:00:00Z", "p": {"z": [1, 2], "y": "ü"}});
        let a = to_vec(&v).unwrap();
        let back: Value = serde_json::from_slice(&a).unwrap();
        assert_eq!(to_vec(&back).unwrap(), a);
    }
}
