//! What a client reads after undoing backslash escapes: the detectors scan
//! this *view* of a value, so `"\u0034111111111111111"` in a JSON string,
//! `4111\ 1111\ 1111\ 1111` in a COPY text row, or a JSON value quoted once
//! more inside an array (`\\u0034`) is seen as the card it decodes to.
//!
//! Decoding is deliberately permissive (it only decides what is scanned,
//! never what is sent): a run of backslashes counts as one escape, whatever
//! its length, because each level of quoting (JSON inside an array inside a
//! record) doubles it; `\uXXXX` (with surrogate pairs) becomes its
//! character, `\b \f \n \r \t \v` their control characters, and an escaped
//! byte that is not a letter or digit (a quote, a slash, a COPY delimiter)
//! itself. A backslash before any other letter or digit escapes nothing in
//! JSON or COPY text and stays as it is. In JSON text only string contents
//! are decoded, and an even run of backslashes before a quote is literal,
//! as in JSON, so the quote still closes the string.
//!
//! Each escape is recorded with its place in both texts, so a hit found in
//! the view is replaced in the value as a whole number of escapes. The
//! engine scans the value itself too, so the view only ever adds hits.

use crate::work;

/// One escape: bytes `raw_start..raw_end` of the value became
/// `view_start..view_end` of the view (never empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Escape {
    pub view_start: usize,
    pub view_end: usize,
    pub raw_start: usize,
    pub raw_end: usize,
}

/// Builds the view of `raw` into `view` and `escapes` (both cleared). Returns
/// `false` when `raw` holds no escape: then the view is `raw` itself (and
/// nothing is copied when it holds no backslash at all).
pub(crate) fn build(raw: &[u8], json: bool, view: &mut Vec<u8>, escapes: &mut Vec<Escape>) -> bool {
    view.clear();
    escapes.clear();
    if memchr::memchr(b'\\', raw).is_none() {
        return false;
    }
    work::charge(raw.len());
    view.reserve(raw.len());
    let mut in_string = false;
    let mut at = 0;
    loop {
        let next = if json {
            memchr::memchr2(b'"', b'\\', &raw[at..])
        } else {
            memchr::memchr(b'\\', &raw[at..])
        };
        let Some(k) = next else {
            view.extend_from_slice(&raw[at..]);
            return !escapes.is_empty();
        };
        let i = at + k;
        view.extend_from_slice(&raw[at..i]);
        if raw[i] == b'"' {
            in_string = !in_string;
            view.push(b'"');
            at = i + 1;
            continue;
        }
        if json && !in_string {
            // Not an escape outside a JSON string (nor valid JSON): kept as is.
            view.push(b'\\');
            at = i + 1;
            continue;
        }
        let run_end = i + backslashes(&raw[i..]);
        let view_start = view.len();
        match decode(raw, i, run_end, json, view) {
            Some(end) => {
                escapes.push(Escape {
                    view_start,
                    view_end: view.len(),
                    raw_start: i,
                    raw_end: end,
                });
                at = end;
            }
            None => {
                view.extend_from_slice(&raw[i..run_end]);
                at = run_end;
            }
        }
    }
}

/// Decodes the escape made of the backslashes `i..run_end` and what follows
/// into `view`; returns where it ends in `raw`, or `None` (nothing written)
/// when the backslashes escape nothing.
fn decode(raw: &[u8], i: usize, run_end: usize, json: bool, view: &mut Vec<u8>) -> Option<usize> {
    let c = *raw.get(run_end)?;
    if c == b'"' && json && (run_end - i).is_multiple_of(2) {
        // Literal backslashes; the quote after them closes the string.
        view.resize(view.len() + (run_end - i) / 2, b'\\');
        return Some(run_end);
    }
    let decoded = match c {
        b'u' => {
            let (cp, end) = surrogate_pair(raw, hex4(raw, run_end + 1)?, run_end + 5);
            let c = char::from_u32(cp).unwrap_or(char::REPLACEMENT_CHARACTER);
            let mut buf = [0u8; 4];
            view.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            return Some(end);
        }
        c => match control_escape(c) {
            Some(b) => b,
            None if c.is_ascii_alphanumeric() => return None,
            None => c,
        },
    };
    view.push(decoded);
    Some(run_end + 1)
}

/// The byte a one-letter control escape stands for (`\b \f \n \r \t \v`),
/// read alike by JSON, PostgreSQL escape strings and COPY's text format.
pub fn control_escape(c: u8) -> Option<u8> {
    Some(match c {
        b'b' => 8,
        b'f' => 12,
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        b'v' => 11,
        _ => return None,
    })
}

/// Joins a high surrogate `cp` with the `\uDC00`-`\uDFFF` escape at `at`
/// (escaped as many times); a lone surrogate stays and becomes U+FFFD.
fn surrogate_pair(raw: &[u8], cp: u32, at: usize) -> (u32, usize) {
    if !(0xD800..0xDC00).contains(&cp) {
        return (cp, at);
    }
    let run = backslashes(raw.get(at..).unwrap_or_default());
    if run == 0 || raw.get(at + run) != Some(&b'u') {
        return (cp, at);
    }
    match hex4(raw, at + run + 1) {
        Some(lo) if (0xDC00..0xE000).contains(&lo) => (
            0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00),
            at + run + 5,
        ),
        _ => (cp, at),
    }
}

fn backslashes(s: &[u8]) -> usize {
    s.iter().take_while(|&&b| b == b'\\').count()
}

fn hex4(raw: &[u8], at: usize) -> Option<u32> {
    let digits = raw.get(at..at + 4)?;
    digits.iter().try_fold(0u32, |acc, &b| {
        let d = (b as char).to_digit(16)?;
        Some(acc << 4 | d)
    })
}

/// Maps offsets of the view back to offsets of the value. Offsets must be
/// asked in non-decreasing order (hits are sorted and do not overlap), so
/// the walk over the escapes is linear.
pub(crate) struct RawMap<'a> {
    escapes: &'a [Escape],
    /// Escapes before this index end before the last offset asked.
    i: usize,
}

/// Tells whether spans of the value (asked in non-decreasing order of
/// start) hold an escape.
pub(crate) struct Crossings<'a> {
    escapes: &'a [Escape],
    i: usize,
}

impl<'a> Crossings<'a> {
    pub(crate) fn new(escapes: &'a [Escape]) -> Self {
        Self { escapes, i: 0 }
    }

    /// Whether bytes `start..end` of the value overlap an escape.
    pub(crate) fn crosses(&mut self, start: usize, end: usize) -> bool {
        self.skip_before(start);
        self.escapes.get(self.i).is_some_and(|e| e.raw_start < end)
    }

    /// `start..end` widened so that it cuts no escape in two (a mask
    /// written over half an escape would leave the other half to change
    /// what the mask means, or make JSON invalid).
    pub(crate) fn widen(&mut self, start: usize, end: usize) -> (usize, usize) {
        self.skip_before(start);
        let start = match self.escapes.get(self.i) {
            Some(e) if e.raw_start < start => e.raw_start,
            _ => start,
        };
        while self.escapes.get(self.i).is_some_and(|e| e.raw_end <= end) {
            self.i += 1;
        }
        let end = match self.escapes.get(self.i) {
            Some(e) if e.raw_start < end => e.raw_end,
            _ => end,
        };
        (start, end)
    }

    fn skip_before(&mut self, start: usize) {
        while self.escapes.get(self.i).is_some_and(|e| e.raw_end <= start) {
            self.i += 1;
        }
    }
}

impl<'a> RawMap<'a> {
    pub(crate) fn new(escapes: &'a [Escape]) -> Self {
        Self { escapes, i: 0 }
    }

    /// Where a span starting at view offset `p` starts in the value; an
    /// escape `p` falls inside is taken whole.
    pub(crate) fn start(&mut self, p: usize) -> usize {
        while self.escapes.get(self.i).is_some_and(|e| e.view_end <= p) {
            self.i += 1;
        }
        match self.escapes.get(self.i) {
            Some(e) if e.view_start <= p => e.raw_start,
            _ => self.literal(p),
        }
    }

    /// Where a span ending (exclusive) at view offset `p` ends in the
    /// value; an escape `p` falls inside is taken whole.
    pub(crate) fn end(&mut self, p: usize) -> usize {
        while self.escapes.get(self.i).is_some_and(|e| e.view_end < p) {
            self.i += 1;
        }
        match self.escapes.get(self.i) {
            Some(e) if e.view_start < p => e.raw_end,
            _ => self.literal(p),
        }
    }

    /// `p` lies between escapes: it is as far past the previous one in
    /// the value as in the view.
    fn literal(&self, p: usize) -> usize {
        match self.i.checked_sub(1).map(|k| self.escapes[k]) {
            Some(e) => e.raw_end + (p - e.view_end),
            None => p,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn view(raw: &str, json: bool) -> (String, Vec<Escape>) {
        let (mut v, mut e) = (Vec::new(), Vec::new());
        if !build(raw.as_bytes(), json, &mut v, &mut e) {
            return (raw.to_string(), e);
        }
        (String::from_utf8(v).unwrap(), e)
    }

    #[test]
    fn json_escapes_decode() {
        assert_eq!(
            view(r#""\u0034111111111111111""#, true).0,
            r#""4111111111111111""#
        );
        assert_eq!(
            view(r#"{"a":"x\/y\n\"z\\"}"#, true).0,
            "{\"a\":\"x/y\n\"z\\\"}"
        );
        // Surrogate pairs, lone surrogates, escapes doubled by an enclosing array.
        assert_eq!(view(r#""\ud83d\ude00""#, true).0, "\"\u{1F600}\"");
        assert_eq!(view(r#""\udc00x""#, true).0, "\"\u{FFFD}x\"");
        assert_eq!(
            view(r#"{"\"\\u0034111111111111111\""}"#, false).0,
            r#"{""4111111111111111""}"#
        );
        // An even run of backslashes before a quote closes the string.
        assert_eq!(view(r#"["a\\", "\u0034"]"#, true).0, r#"["a\", "4"]"#);
        // Outside strings nothing is decoded; no backslash, no copy.
        assert_eq!(view(r#"[1,\u0034]"#, true).0, r#"[1,\u0034]"#);
        assert!(view("plain", false).1.is_empty());
    }

    #[test]
    fn copy_text_escapes_decode() {
        assert_eq!(
            view(r"4111\ 1111\ 1111\ 1111", false).0,
            "4111 1111 1111 1111"
        );
        // `\\c` and `\N` escape nothing a detector cares about: kept as they are.
        assert_eq!(view(r"a\tb\\c\N", false).0, "a\tb\\\\c\\N");
        assert!(view(r"C:\Users\j", false).1.is_empty());
    }

    #[test]
    fn offsets_map_back_to_whole_escapes() {
        let raw = r#""a\u0034b\/c""#;
        let (v, e) = view(raw, true);
        assert_eq!(v, "\"a4b/c\"");
        let mut m = RawMap::new(&e);
        // "4" is the whole \u0034; "b" sits between escapes.
        assert_eq!(m.start(2), 2);
        assert_eq!(m.end(3), 8);
        assert_eq!(m.start(3), 8);
        assert_eq!(m.end(4), 9);
        assert_eq!(m.end(6), 12);
        let mut c = Crossings::new(&e);
        assert!(c.crosses(1, 3));
        assert!(!c.crosses(8, 9));
        assert!(c.crosses(8, 10));
        let mut w = Crossings::new(&e);
        assert_eq!(w.widen(1, 4), (1, 8));
        assert_eq!(w.widen(8, 10), (8, 11));
    }

    proptest! {
        /// Any bytes: the view builds without panicking, its escapes are
        /// ordered, non-empty and inside both texts, and every offset maps
        /// back inside the value.
        #[test]
        fn never_panics(raw in proptest::collection::vec(
            prop_oneof![Just(b'\\'), Just(b'"'), Just(b'u'), Just(b'd'), Just(b'8'),
                        Just(b'0'), Just(b'n'), any::<u8>()], 0..64),
            json in any::<bool>())
        {
            let (mut v, mut e) = (Vec::new(), Vec::new());
            if build(&raw, json, &mut v, &mut e) {
                let (mut vp, mut rp) = (0, 0);
                for x in &e {
                    prop_assert!(x.view_start >= vp && x.view_start < x.view_end);
                    prop_assert!(x.raw_start >= rp && x.raw_start < x.raw_end);
                    prop_assert!(x.view_end <= v.len() && x.raw_end <= raw.len());
                    vp = x.view_end;
                    rp = x.raw_end;
                }
                let mut m = RawMap::new(&e);
                let mut last = 0;
                for p in 0..v.len() {
                    let s = m.start(p);
                    let end = m.end(p + 1);
                    prop_assert!(s >= last && s < end && end <= raw.len());
                    last = s;
                }
            }
        }
    }
}
