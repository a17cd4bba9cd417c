//! Writing masks into JSON text so the document stays valid: a hit inside
//! a string is replaced by the mask escaped for a JSON string; a hit in a
//! bare number (or `true`, `false`, `null`) replaces the whole token by the
//! mask as a string; a hit that runs across several tokens (a pattern that
//! matched across a key and its value) puts the mask in the first one and
//! empties the others, leaving the structure (`{ } [ ] : ,` and spaces),
//! which holds no data, in place.
//!
//! Tokens are read lazily, front to back, as hits come in order, so a
//! document is walked once whatever the number of hits (reading from the
//! start for each hit made masking quadratic: 16 s of CPU for one JSON
//! string of 80,000 email addresses).

use crate::work;

/// A token the masker may rewrite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    /// A string: `start..end` is its content, between the quotes.
    Str { start: usize, end: usize },
    /// A number or literal.
    Scalar { start: usize, end: usize },
}

impl Token {
    /// The bytes a hit may replace.
    fn span(self) -> (usize, usize) {
        match self {
            Token::Str { start, end } | Token::Scalar { start, end } => (start, end),
        }
    }
}

fn structural(b: u8) -> bool {
    matches!(
        b,
        b'{' | b'}' | b'[' | b']' | b':' | b',' | b' ' | b'\t' | b'\n' | b'\r'
    )
}

/// Rewrites hits (spans of the JSON text, in order, not overlapping) into
/// `out`.
pub(crate) struct JsonWriter<'a> {
    raw: &'a [u8],
    /// Where token reading goes on.
    pos: usize,
    /// A token read but not yet left behind (it may hold the next hit too).
    current: Option<Token>,
    /// Bytes of `raw` before this are written (or replaced) already.
    at: usize,
}

impl<'a> JsonWriter<'a> {
    pub(crate) fn new(raw: &'a [u8]) -> Self {
        Self {
            raw,
            pos: 0,
            current: None,
            at: 0,
        }
    }

    fn next_token(&mut self) -> Option<Token> {
        let raw = self.raw;
        let from = self.pos;
        while self.pos < raw.len() && structural(raw[self.pos]) {
            self.pos += 1;
        }
        let token = if self.pos >= raw.len() {
            None
        } else if raw[self.pos] == b'"' {
            let start = self.pos + 1;
            let mut i = start;
            // A backslash escapes the byte after it, so `\\"` closes the string.
            let end = loop {
                match memchr::memchr2(b'"', b'\\', &raw[i.min(raw.len())..]) {
                    None => break raw.len(),
                    Some(k) if raw[i + k] == b'\\' => i += k + 2,
                    Some(k) => break i + k,
                }
            };
            self.pos = (end + 1).min(raw.len());
            Some(Token::Str { start, end })
        } else {
            let start = self.pos;
            while self.pos < raw.len() && !structural(raw[self.pos]) && raw[self.pos] != b'"' {
                self.pos += 1;
            }
            Some(Token::Scalar {
                start,
                end: self.pos,
            })
        };
        work::charge(self.pos - from);
        token
    }

    /// Writes the text up to the hit `start..end`, and the hit replaced by
    /// `mask`. Returns whether anything was replaced (a hit over structure
    /// alone replaces nothing).
    pub(crate) fn hit(&mut self, start: usize, end: usize, mask: &[u8], out: &mut Vec<u8>) -> bool {
        let mut first = true;
        loop {
            if self.current.is_none() {
                self.current = self.next_token();
            }
            let Some(t) = self.current else { break };
            let (ts, te) = t.span();
            if te <= start || te <= self.at {
                self.current = None;
                continue;
            }
            if ts >= end {
                break;
            }
            match t {
                Token::Str { .. } => {
                    let ps = start.max(ts).max(self.at);
                    let pe = end.min(te);
                    if ps < pe {
                        out.extend_from_slice(&self.raw[self.at..ps]);
                        if first {
                            escape_into(mask, out);
                            first = false;
                        }
                        self.at = pe;
                    }
                }
                Token::Scalar { .. } => {
                    // A number cannot hold a mask: the whole token becomes a string.
                    out.extend_from_slice(&self.raw[self.at..ts.max(self.at)]);
                    out.push(b'"');
                    if first {
                        escape_into(mask, out);
                        first = false;
                    }
                    out.push(b'"');
                    self.at = te;
                }
            }
            if te > end {
                // The token goes on past the hit: the next hit may be in it too.
                break;
            }
            self.current = None;
        }
        !first
    }

    /// Writes the rest of the text.
    pub(crate) fn finish(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.raw[self.at..]);
    }
}

/// Writes `s` as the inside of a JSON string.
fn escape_into(s: &[u8], out: &mut Vec<u8>) {
    for &b in s {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0..=0x1f => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 15) as usize]);
            }
            _ => out.push(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite(json: &str, hits: &[(usize, usize)], mask: &str) -> String {
        let mut w = JsonWriter::new(json.as_bytes());
        let mut out = Vec::new();
        for &(s, e) in hits {
            w.hit(s, e, mask.as_bytes(), &mut out);
        }
        w.finish(&mut out);
        String::from_utf8(out).unwrap()
    }

    fn at(json: &str, part: &str) -> (usize, usize) {
        let s = json.find(part).unwrap();
        (s, s + part.len())
    }

    #[test]
    fn strings_numbers_and_spans_across_tokens() {
        let j = r#"{"a": "x 4111 y", "n": -4111, "b": [true, "q"]}"#;
        assert_eq!(
            rewrite(j, &[at(j, "4111 "), at(j, "4111,")], "M\"\n"),
            r#"{"a": "x M\"\u000ay", "n": "M\"\u000a", "b": [true, "q"]}"#
        );
        // A span from inside one string to inside another: the mask in the
        // first, the rest emptied, the number between replaced by "".
        let j = r#"{"k": "pw='ab", "n": 5, "v": "cd' tail"}"#;
        let (s, _) = at(j, "ab\"");
        let (_, e) = at(j, "cd'");
        assert_eq!(
            rewrite(j, &[(s, e)], "[masked:password]"),
            r#"{"k": "pw='[masked:password]", "": "", "": " tail"}"#
        );
        // Two hits in one string; a hit over structure alone replaces nothing.
        let j = r#"["a1 b2", 7]"#;
        assert_eq!(
            rewrite(j, &[at(j, "a1"), at(j, "b2"), at(j, ", ")], "*"),
            r#"["* *", 7]"#
        );
    }
}
