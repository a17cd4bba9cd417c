//! How a COPY TO writes its rows, from the statement's own options: fields
//! are split, decoded exactly as a COPY client decodes them (so an escaped
//! delimiter, an octal escape or a doubled quote hides nothing from the
//! detectors), and masked values encoded again the same way.

use super::super::MaskFailure;
use gatehouse_mask::work;
use gatehouse_sql::{CopyFormat, CopyOut};

/// How a COPY's rows are written.
#[derive(Debug, Clone)]
pub(super) struct Syntax {
    pub(super) csv: bool,
    pub(super) delimiter: u8,
    quote: u8,
    escape: u8,
    pub(super) null: Vec<u8>,
}

fn one_byte(option: &str, v: Option<&str>, default: u8) -> Result<u8, String> {
    match v {
        None => Ok(default),
        Some(s) if s.len() == 1 => Ok(s.as_bytes()[0]),
        Some(s) => Err(format!(
            "COPY {option} {s:?} is not a single one-byte character"
        )),
    }
}

pub(super) fn malformed() -> MaskFailure {
    MaskFailure("a COPY row could not be split into its fields".into())
}

fn undecodable() -> MaskFailure {
    MaskFailure("a COPY field could not be decoded to inspect".into())
}

impl Syntax {
    pub(super) fn of(copy: &CopyOut) -> Result<Self, String> {
        let csv = match copy.format {
            CopyFormat::Csv => true,
            CopyFormat::Text => false,
            CopyFormat::Binary => {
                return Err("COPY in binary format cannot be masked; use FORMAT text or csv".into())
            }
        };
        if let Some(e) = &copy.encoding {
            let normalized = e.to_ascii_lowercase().replace(['_', '-'], "");
            if !matches!(normalized.as_str(), "utf8" | "unicode" | "sqlascii") {
                return Err(format!(
                    "COPY with ENCODING {e:?} cannot be masked; leave ENCODING out (UTF-8)"
                ));
            }
        }
        let delimiter = one_byte(
            "DELIMITER",
            copy.delimiter.as_deref(),
            if csv { b',' } else { b'\t' },
        )?;
        let quote = one_byte("QUOTE", copy.quote.as_deref(), b'"')?;
        let escape = one_byte("ESCAPE", copy.escape.as_deref(), quote)?;
        let null = copy
            .null
            .clone()
            .unwrap_or_else(|| if csv { String::new() } else { "\\N".into() })
            .into_bytes();
        Ok(Self {
            csv,
            delimiter,
            quote,
            escape,
            null,
        })
    }

    #[cfg(test)]
    pub(super) fn new(csv: bool, delimiter: u8, quote: u8, escape: u8, null: &[u8]) -> Self {
        Self {
            csv,
            delimiter,
            quote,
            escape,
            null: null.to_vec(),
        }
    }

    /// The end of the field starting at `at` (exclusive), and whether it is a quoted CSV field.
    pub(super) fn field_end(&self, row: &[u8], at: usize) -> Result<(usize, bool), MaskFailure> {
        let mut i = at;
        if self.csv && row.get(at) == Some(&self.quote) {
            i += 1;
            loop {
                match row.get(i) {
                    None => return Err(malformed()),
                    Some(&b) if b == self.escape && self.escape != self.quote => i += 2,
                    Some(&b) if b == self.quote => {
                        if self.escape == self.quote && row.get(i + 1) == Some(&self.quote) {
                            i += 2;
                        } else {
                            work::charge(i + 1 - at);
                            return Ok((i + 1, true));
                        }
                    }
                    Some(_) => i += 1,
                }
            }
        }
        while let Some(&b) = row.get(i) {
            if b == self.delimiter || b == b'\n' || b == b'\r' {
                break;
            }
            // Text format escapes a delimiter in a value with a backslash.
            i += if !self.csv && b == b'\\' { 2 } else { 1 };
        }
        let end = i.min(row.len());
        work::charge(end - at);
        Ok((end, false))
    }

    /// The value of the field `raw`: `raw` itself when it holds nothing to
    /// decode, else its decoding in `buf`. What a client could not decode
    /// the same way (a lone backslash, a stray quote) is an error, so the
    /// row is withheld rather than guessed at.
    pub(super) fn value<'a>(
        &self,
        raw: &'a [u8],
        quoted: bool,
        buf: &'a mut Vec<u8>,
    ) -> Result<&'a [u8], MaskFailure> {
        if self.csv {
            if !quoted {
                // PostgreSQL quotes every field that holds a quote.
                if raw.contains(&self.quote) {
                    return Err(undecodable());
                }
                return Ok(raw);
            }
            buf.clear();
            self.decode_quoted(raw, buf)?;
            return Ok(buf);
        }
        if !raw.contains(&b'\\') {
            return Ok(raw);
        }
        buf.clear();
        decode_text(raw, buf)?;
        Ok(buf)
    }

    /// The inside of a quoted CSV field, `raw` with its quotes.
    fn decode_quoted(&self, raw: &[u8], out: &mut Vec<u8>) -> Result<(), MaskFailure> {
        let inner = raw
            .get(1..raw.len().saturating_sub(1))
            .ok_or_else(undecodable)?;
        work::charge(inner.len());
        let mut i = 0;
        while i < inner.len() {
            let b = inner[i];
            let next = inner.get(i + 1).copied();
            if b == self.escape && (next == Some(self.quote) || next == Some(self.escape)) {
                out.push(inner[i + 1]);
                i += 2;
            } else if b == self.quote {
                // A quote neither escaped nor doubled would have closed the field.
                return Err(undecodable());
            } else {
                out.push(b);
                i += 1;
            }
        }
        Ok(())
    }

    /// Encodes a masked value as a field.
    pub(super) fn encode(&self, value: &[u8], out: &mut Vec<u8>) {
        work::charge(value.len());
        if self.csv {
            // Always quoted, so a delimiter, newline or the null string in it stays data.
            out.push(self.quote);
            for &b in value {
                if b == self.quote || b == self.escape {
                    out.push(self.escape);
                }
                out.push(b);
            }
            out.push(self.quote);
            return;
        }
        for &b in value {
            match b {
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                8 => out.extend_from_slice(b"\\b"),
                12 => out.extend_from_slice(b"\\f"),
                11 => out.extend_from_slice(b"\\v"),
                b if b == self.delimiter => {
                    out.push(b'\\');
                    out.push(b);
                }
                b => out.push(b),
            }
        }
    }
}

/// Decodes a text-format field as COPY FROM reads it: `\b \f \n \r \t \v`,
/// octal `\ooo` (one to three digits), hex `\xhh` (one or two digits), and a
/// backslash before any other byte (the delimiter, a backslash) for that
/// byte. A backslash with nothing after it cannot be read: an error.
fn decode_text(raw: &[u8], out: &mut Vec<u8>) -> Result<(), MaskFailure> {
    work::charge(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        let Some(&c) = raw.get(i + 1) else {
            return Err(undecodable());
        };
        i += 2;
        let decoded = match c {
            b'0'..=b'7' => {
                let mut v = u32::from(c - b'0');
                for _ in 0..2 {
                    match raw.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                // As PostgreSQL does: the low eight bits.
                (v & 0xff) as u8
            }
            b'x' => match raw.get(i).and_then(|&d| hex(d)) {
                None => b'x',
                Some(hi) => {
                    i += 1;
                    match raw.get(i).and_then(|&d| hex(d)) {
                        Some(lo) => {
                            i += 1;
                            hi << 4 | lo
                        }
                        None => hi,
                    }
                }
            },
            other => gatehouse_mask::control_escape(other).unwrap_or(other),
        };
        out.push(decoded);
    }
    Ok(())
}

fn hex(d: u8) -> Option<u8> {
    (d as char).to_digit(16).map(|v| v as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fields(s: &Syntax, row: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        let mut at = 0;
        loop {
            let (end, quoted) = s.field_end(row, at).unwrap();
            let mut buf = Vec::new();
            let v = s.value(&row[at..end], quoted, &mut buf).unwrap();
            out.push(String::from_utf8(v.to_vec()).unwrap());
            if row.get(end) != Some(&s.delimiter) {
                break;
            }
            at = end + 1;
        }
        out
    }

    #[test]
    fn text_fields_round_trip() {
        let s = Syntax::new(false, b'\t', b'"', b'"', b"\\N");
        assert_eq!(
            fields(&s, b"1\ta\\tb\\\\c\\nd\t\\N\n"),
            // The null marker is recognized before decoding (`\N` would decode to `N`).
            vec!["1", "a\tb\\c\nd", "N"]
        );
        let mut enc = Vec::new();
        s.encode(b"x\ty\\z\n", &mut enc);
        assert_eq!(enc, b"x\\ty\\\\z\\n");
        assert_eq!(
            fields(&s, &[enc.as_slice(), b"\n"].concat()),
            vec!["x\ty\\z\n"]
        );
    }

    #[test]
    fn text_escapes_decode_as_copy_from_reads_them() {
        let s = Syntax::new(false, b' ', b'"', b'"', b"\\N");
        // An escaped delimiter, octal, hex, and escaped letters.
        assert_eq!(
            fields(&s, b"4111\\ 1111\\0401111\\x201111 \\x34\\6\\61\\q\n"),
            vec!["4111 1111 1111 1111", "4\u{6}1q"]
        );
        // Octal keeps the low eight bits; \x without a hex digit is an x.
        assert_eq!(fields(&s, b"\\477\\xg\n"), vec!["?xg"]);
        let mut buf = Vec::new();
        assert!(s.value(b"ab\\", false, &mut buf).is_err());
    }

    #[test]
    fn csv_fields_round_trip() {
        let s = Syntax::new(true, b',', b'"', b'"', b"");
        assert_eq!(
            fields(&s, b"1,\"a,\"\"b\"\"\nc\",,plain\n"),
            vec!["1", "a,\"b\"\nc", "", "plain"]
        );
        let mut enc = Vec::new();
        s.encode(b"q\"x,", &mut enc);
        assert_eq!(enc, b"\"q\"\"x,\"");
        assert!(s.field_end(b"\"open", 0).is_err());
        // Quote and escape characters that are digits (QUOTE '1', ESCAPE '4').
        let s = Syntax::new(true, b',', b'1', b'1', b"");
        assert_eq!(
            fields(&s, b"141111111111111111111111111111111\n"),
            vec!["4111111111111111"]
        );
        let s = Syntax::new(true, b',', b'"', b'4', b"");
        assert_eq!(fields(&s, b"\"44111-4\"x44\"\n"), vec!["4111-\"x4"]);
        // A stray quote in an unquoted field, or an unescaped one inside: withheld.
        let s = Syntax::new(true, b',', b'"', b'"', b"");
        let mut buf = Vec::new();
        assert!(s.value(b"a\"b", false, &mut buf).is_err());
    }

    proptest! {
        /// Any row, any syntax: splitting and decoding never panic.
        #[test]
        fn decoding_never_panics(
            row in proptest::collection::vec(prop_oneof![
                Just(b'\\'), Just(b'"'), Just(b','), Just(b'\t'), Just(b'\n'),
                Just(b'x'), Just(b'7'), any::<u8>()], 0..64),
            csv in any::<bool>(),
            delimiter in prop_oneof![Just(b','), Just(b'\t'), Just(b' '), Just(b'1')],
            quote in prop_oneof![Just(b'"'), Just(b'1'), Just(b'\'')],
            escape in prop_oneof![Just(b'"'), Just(b'\\'), Just(b'4')],
        ) {
            let s = Syntax::new(csv, delimiter, quote, escape, b"\\N");
            let mut at = 0;
            let mut buf = Vec::new();
            while at <= row.len() {
                let Ok((end, quoted)) = s.field_end(&row, at) else { break };
                prop_assert!(end >= at && end <= row.len());
                let _ = s.value(&row[at..end], quoted, &mut buf);
                at = end + 1;
            }
        }

        /// What `encode` writes decodes back to the value, in both formats.
        #[test]
        fn encoding_round_trips(
            value in proptest::collection::vec(any::<u8>(), 0..40),
            csv in any::<bool>(),
            delimiter in prop_oneof![Just(b','), Just(b'\t'), Just(b' '), Just(b'|')],
            quote in prop_oneof![Just(b'"'), Just(b'1')],
            escape in prop_oneof![Just(b'"'), Just(b'\\'), Just(b'1')],
        ) {
            prop_assume!(delimiter != quote);
            let s = Syntax::new(csv, delimiter, quote, escape, b"\\N");
            let mut row = Vec::new();
            s.encode(&value, &mut row);
            let fail = |e: MaskFailure| TestCaseError::fail(e.0);
            let (end, quoted) = s.field_end(&row, 0).map_err(fail)?;
            prop_assert_eq!(end, row.len());
            let mut buf = Vec::new();
            prop_assert_eq!(s.value(&row, quoted, &mut buf).map_err(fail)?, &value[..]);
        }
    }
}
