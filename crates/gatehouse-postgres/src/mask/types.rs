//! How a result column's values are inspected, by type OID and format.

use std::io::Write as _;

/// What the gateway does with one column's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Treatment {
    /// Types whose values cannot hold what the detectors look for (integers
    /// of four bytes or less, floats, booleans, dates and times, UUIDs…).
    Skip,
    /// Text bytes. `in_place`: a hit is replaced inside the value (text-like
    /// types); otherwise the value becomes NULL, since a mask is not a valid
    /// value of the type. `json`: replacements keep JSON valid.
    Text { in_place: bool, json: bool },
    /// Binary jsonb: a version byte, then JSON text.
    JsonbBinary,
    /// Text-format bytea (`\x` hex): decoded and scanned; NULL on a hit.
    ByteaHex,
    /// Binary int8: printed in decimal and scanned; NULL on a hit.
    Int8Binary,
    /// Binary numeric: printed in decimal and scanned; NULL on a hit.
    NumericBinary,
    /// Any other binary value: its raw bytes are scanned (text inside
    /// arrays, composites and bytea shows there as is); NULL on a hit.
    RawBinary,
    /// inet and cidr: every value is an IP address.
    IpAddress,
}

const TEXT_LIKE: &[u32] = &[
    25,   // text
    1043, // varchar
    1042, // bpchar
    19,   // name
    705,  // unknown
    142,  // xml
    2249, // record
];
const JSON: &[u32] = &[114, 3802]; // json, jsonb
const TEXT_ARRAYS: &[u32] = &[
    1009, // _text
    1015, // _varchar
    1014, // _bpchar
    1003, // _name
    143,  // _xml
    199,  // _json
    3807, // _jsonb
    2287, // _record
];
const SKIP: &[u32] = &[
    16, 18, 21, 23, 24, 26, 27, 28, 29, 700, 701, 790, 1082, 1083, 1114, 1184, 1186, 1266, 2950,
    3220, 5069, 1560, 1562, 829, 774, 2202, 2203, 2204, 2205, 2206, 3734, 3769, 4089, 4096, 1000,
    1005, 1007, 1021, 1022, 1028, 1115, 1182, 1183, 1185, 1187, 1270, 2951,
];
const INET: &[u32] = &[869, 650]; // inet, cidr
const INT8: u32 = 20;
const NUMERIC: u32 = 1700;
const BYTEA: u32 = 17;
const JSONB: u32 = 3802;
/// OIDs below this are built into PostgreSQL; above are user types (enums,
/// composites, domains, extension types such as citext).
const FIRST_USER_OID: u32 = 16384;

/// The treatment of a column of type `oid` sent in `binary` or text format.
pub(crate) fn treatment(oid: u32, binary: bool, ip_detectors: bool) -> Treatment {
    if INET.contains(&oid) {
        return if ip_detectors {
            Treatment::IpAddress
        } else {
            Treatment::Skip
        };
    }
    if SKIP.contains(&oid) {
        return Treatment::Skip;
    }
    let json = JSON.contains(&oid);
    if !binary {
        return if oid == BYTEA {
            Treatment::ByteaHex
        } else {
            Treatment::Text {
                in_place: json
                    || TEXT_LIKE.contains(&oid)
                    || TEXT_ARRAYS.contains(&oid)
                    || oid >= FIRST_USER_OID,
                json,
            }
        };
    }
    match oid {
        JSONB => Treatment::JsonbBinary,
        INT8 => Treatment::Int8Binary,
        NUMERIC => Treatment::NumericBinary,
        _ if json || TEXT_LIKE.contains(&oid) && oid != 2249 => Treatment::Text {
            in_place: true,
            json,
        },
        _ => Treatment::RawBinary,
    }
}

/// Whether a whole-value mask (a column rule) may be written in place for
/// this treatment; otherwise the value is sent as NULL.
pub(crate) fn rule_in_place(t: Treatment) -> bool {
    matches!(
        t,
        Treatment::Text { in_place: true, .. } | Treatment::JsonbBinary
    )
}

/// Decimal digits of a binary numeric value, or `None` if it is malformed.
pub(crate) fn numeric_text(v: &[u8], out: &mut Vec<u8>) -> Option<()> {
    if v.len() < 8 {
        return None;
    }
    let rd = |i: usize| i16::from_be_bytes([v[i], v[i + 1]]);
    let ndigits = rd(0);
    let weight = rd(2) as i32;
    let sign = u16::from_be_bytes([v[4], v[5]]);
    if ndigits < 0 || v.len() != 8 + 2 * ndigits as usize {
        return None;
    }
    if sign == 0xC000 || sign == 0xD000 || sign == 0xF000 {
        out.extend_from_slice(b"NaN");
        return Some(());
    }
    let digit = |i: i32| -> i16 {
        if i >= 0 && i < ndigits as i32 {
            rd(8 + 2 * i as usize)
        } else {
            0
        }
    };
    if sign == 0x4000 {
        out.push(b'-');
    }
    if weight < 0 {
        out.push(b'0');
    }
    for i in 0..=weight.max(-1) {
        let d = digit(i);
        if !(0..10000).contains(&d) {
            return None;
        }
        // Writing to a Vec cannot fail.
        let _ = if i == 0 {
            write!(out, "{d}")
        } else {
            write!(out, "{d:04}")
        };
    }
    if ndigits as i32 > weight + 1 {
        out.push(b'.');
        for i in (weight + 1)..ndigits as i32 {
            let d = digit(i);
            if !(0..10000).contains(&d) {
                return None;
            }
            let _ = write!(out, "{d:04}");
        }
    }
    Some(())
}

/// Decodes text-format bytea (`\x` followed by hex) into `out`.
pub(crate) fn bytea_hex(v: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let hex = v.strip_prefix(b"\\x")?;
    if hex.len() % 2 != 0 {
        return None;
    }
    let nib = |c: u8| -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    };
    for pair in hex.chunks_exact(2) {
        out.push(nib(pair[0])? << 4 | nib(pair[1])?);
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numerics() {
        // 4111111111111111 = 4111 1111 1111 1111 in base 10000, weight 3.
        let mut v = vec![0, 4, 0, 3, 0, 0, 0, 0];
        for d in [4111i16, 1111, 1111, 1111] {
            v.extend_from_slice(&d.to_be_bytes());
        }
        let mut out = Vec::new();
        numeric_text(&v, &mut out).unwrap();
        assert_eq!(out, b"4111111111111111");
        // 12.5: digits [12, 5000], weight 0, dscale 1.
        let v = [0, 2, 0, 0, 0, 0, 0, 1, 0, 12, 0x13, 0x88];
        let mut out = Vec::new();
        numeric_text(&v, &mut out).unwrap();
        assert_eq!(out, b"12.5000");
        assert!(numeric_text(&[0, 5, 0, 0], &mut out).is_none());
    }

    #[test]
    fn bytea() {
        let mut out = Vec::new();
        bytea_hex(b"\\x34313131", &mut out).unwrap();
        assert_eq!(out, b"4111");
        assert!(bytea_hex(b"\\x3", &mut out).is_none());
    }

    #[test]
    fn treatments() {
        assert_eq!(treatment(23, false, true), Treatment::Skip);
        assert_eq!(treatment(869, true, true), Treatment::IpAddress);
        assert_eq!(treatment(869, true, false), Treatment::Skip);
        assert_eq!(
            treatment(25, true, true),
            Treatment::Text {
                in_place: true,
                json: false
            }
        );
        assert_eq!(
            treatment(20, false, true),
            Treatment::Text {
                in_place: false,
                json: false
            }
        );
        assert_eq!(treatment(20, true, true), Treatment::Int8Binary);
        assert_eq!(treatment(17, false, true), Treatment::ByteaHex);
        assert_eq!(treatment(50000, true, true), Treatment::RawBinary);
        assert_eq!(
            treatment(50000, false, true),
            Treatment::Text {
                in_place: true,
                json: false
            }
        );
    }
}
