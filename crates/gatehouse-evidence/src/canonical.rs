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
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(k, out);
                out.push(b':');
                // The key came from this map.
                if let Some(x) = m.get(k) {
                    write(x, out)?;
                }
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// The canonical encoding of `v`.
pub fn to_vec(v: &Value) -> Result<Vec<u8>, EvidenceError> {
    let mut out = Vec::with_capacity(256);
    write(v, &mut out)?;
    Ok(out)
}

/// Appends the canonical encoding of the string `s`.
pub fn write_str(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let mut buf = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
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
    fn reparsing_gives_the_same_bytes() {
        let v = json!({"seq": 18446744073709551615u64, "t": "2026-11-22T10:00:00Z", "p": {"z": [1, 2], "y": "ü"}});
        let a = to_vec(&v).unwrap();
        let back: Value = serde_json::from_slice(&a).unwrap();
        assert_eq!(to_vec(&back).unwrap(), a);
    }
}
