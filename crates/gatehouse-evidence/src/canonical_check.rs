//! A one-pass check that bytes are exactly the canonical encoding
//! ([`crate::canonical`]) of some JSON value, without building the value.
//!
//! The rules are the encoder's, read backwards: no whitespace; the literals
//! `true`, `false`, `null`; integers as `-?(0|[1-9][0-9]*)` that fit `i64`
//! (negative) or `u64` (otherwise), never `-0`; strings in valid UTF-8 where
//! exactly `"`, `\` and the control characters are escaped, as `\b \f \n \r
//! \t` or else lower-case `\u00xx`, and nothing else is; object members in
//! strictly increasing key order (UTF-16 code units, so no duplicates);
//! exactly one value, nothing after it. Nesting is limited as serde_json
//! limits it (127 open arrays and objects), so hostile input cannot
//! exhaust the stack.

use crate::canonical::key_order;
use std::borrow::Cow;
use std::cmp::Ordering;

/// serde_json refuses input with this many nested arrays and objects.
const MAX_DEPTH: usize = 128;

/// Whether `bytes` are exactly the canonical encoding of some JSON value
/// (what `canonical::to_vec` would write for it), checked in one pass over
/// the bytes without building a value and without allocating in the common
/// case (keys without escapes).
pub(crate) fn check(bytes: &[u8]) -> Result<(), String> {
    let mut c = Checker { b: bytes, i: 0 };
    c.value(0)?;
    if c.i != bytes.len() {
        return Err(format!("trailing bytes at byte {}", c.i));
    }
    Ok(())
}

/// Where a string's contents are (between the quotes) and what they hold.
#[derive(Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
    /// Holds an escape, so the raw bytes are not the contents.
    escaped: bool,
    /// Holds a character at or above U+D800 (lead byte 0xEE or more: valid
    /// UTF-8 has no surrogates, and U+D000..=U+D7FF lead with 0xED).
    high: bool,
}

/// Byte classes inside a string.
const PLAIN: u8 = 0;
const QUOTE: u8 = 1;
const BACKSLASH: u8 = 2;
const CONTROL: u8 = 3;
const NON_ASCII: u8 = 4;

static CLASS: [u8; 256] = {
    let mut t = [PLAIN; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = if i < 0x20 {
            CONTROL
        } else if i == b'"' as usize {
            QUOTE
        } else if i == b'\\' as usize {
            BACKSLASH
        } else if i >= 0x80 {
            NON_ASCII
        } else {
            PLAIN
        };
        i += 1;
    }
    t
};

struct Checker<'a> {
    b: &'a [u8],
    i: usize,
}

impl Checker<'_> {
    fn peek(&self) -> Result<u8, String> {
        self.b
            .get(self.i)
            .copied()
            .ok_or_else(|| format!("unexpected end at byte {}", self.i))
    }

    fn unexpected(&self) -> String {
        match self.b.get(self.i) {
            Some(c) => format!("unexpected byte 0x{c:02x} at byte {}", self.i),
            None => format!("unexpected end at byte {}", self.i),
        }
    }

    fn eat(&mut self, c: u8) -> Result<(), String> {
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), String> {
        if self.b.get(self.i..).is_some_and(|r| r.starts_with(word)) {
            self.i += word.len();
            Ok(())
        } else {
            Err(format!("bad literal at byte {}", self.i))
        }
    }

    /// One value starting at `self.i`, inside `depth` open arrays and objects.
    fn value(&mut self, depth: usize) -> Result<(), String> {
        match self.peek()? {
            b'{' => self.object(depth + 1),
            b'[' => self.array(depth + 1),
            b'"' => self.string().map(|_| ()),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => Err(self.unexpected()),
        }
    }

    fn too_deep(&self, depth: usize) -> Result<(), String> {
        if depth >= MAX_DEPTH {
            Err(format!("nested too deeply at byte {}", self.i))
        } else {
            Ok(())
        }
    }

    fn array(&mut self, depth: usize) -> Result<(), String> {
        self.too_deep(depth)?;
        self.i += 1;
        if self.peek()? == b']' {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.value(depth)?;
            match self.peek()? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(self.unexpected()),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<(), String> {
        self.too_deep(depth)?;
        self.i += 1;
        if self.peek()? == b'}' {
            self.i += 1;
            return Ok(());
        }
        let mut prev: Option<Span> = None;
        loop {
            let at = self.i;
            if self.peek()? != b'"' {
                return Err(format!("expected a key at byte {at}"));
            }
            let key = self.string()?;
            if let Some(p) = prev {
                match self.key_cmp(p, key)? {
                    Ordering::Less => {}
                    Ordering::Equal => return Err(format!("duplicate key at byte {at}")),
                    Ordering::Greater => return Err(format!("members out of order at byte {at}")),
                }
            }
            prev = Some(key);
            self.eat(b':')?;
            self.value(depth)?;
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(self.unexpected()),
            }
        }
    }

    /// Compares two keys as `canonical` orders them.
    fn key_cmp(&self, a: Span, b: Span) -> Result<Ordering, String> {
        if !(a.escaped || b.escaped || a.high || b.high) {
            return Ok(self.b[a.start..a.end].cmp(&self.b[b.start..b.end]));
        }
        Ok(key_order(&self.contents(a)?, &self.contents(b)?))
    }

    /// The contents of a checked string, its escapes decoded.
    fn contents(&self, s: Span) -> Result<Cow<'_, str>, String> {
        let raw = &self.b[s.start..s.end];
        if !s.escaped {
            return std::str::from_utf8(raw)
                .map(Cow::Borrowed)
                .map_err(|_| format!("invalid UTF-8 at byte {}", s.start));
        }
        // Every escape the check lets through stands for one ASCII byte.
        let mut out = Vec::with_capacity(raw.len());
        let mut k = 0;
        while k < raw.len() {
            if raw[k] != b'\\' {
                out.push(raw[k]);
                k += 1;
                continue;
            }
            let (byte, len) = match raw.get(k + 1) {
                Some(b'b') => (0x08, 2),
                Some(b'f') => (0x0c, 2),
                Some(b'n') => (b'\n', 2),
                Some(b'r') => (b'\r', 2),
                Some(b't') => (b'\t', 2),
                Some(b'u') => match (raw.get(k + 4), raw.get(k + 5)) {
                    (Some(&h), Some(&l)) => ((hex(h) << 4) | hex(l), 6),
                    _ => return Err(format!("bad escape at byte {}", s.start + k)),
                },
                Some(&c) => (c, 2),
                None => return Err(format!("bad escape at byte {}", s.start + k)),
            };
            out.push(byte);
            k += len;
        }
        String::from_utf8(out)
            .map(Cow::Owned)
            .map_err(|_| format!("invalid UTF-8 at byte {}", s.start))
    }

    /// A string starting at the quote at `self.i`.
    fn string(&mut self) -> Result<Span, String> {
        self.i += 1;
        let start = self.i;
        let mut escaped = false;
        let mut high = false;
        loop {
            // Skip the run of bytes that need no attention.
            let rest = self.b.get(self.i..).unwrap_or_default();
            self.i += rest
                .iter()
                .position(|&c| CLASS[c as usize] != PLAIN)
                .unwrap_or(rest.len());
            let Some(&c) = self.b.get(self.i) else {
                return Err(format!("unterminated string at byte {}", start - 1));
            };
            match CLASS[c as usize] {
                PLAIN => self.i += 1,
                QUOTE => {
                    let end = self.i;
                    self.i += 1;
                    return Ok(Span {
                        start,
                        end,
                        escaped,
                        high,
                    });
                }
                BACKSLASH => {
                    self.escape()?;
                    escaped = true;
                }
                CONTROL => return Err(format!("unescaped control character at byte {}", self.i)),
                _ => {
                    high |= c >= 0xee;
                    self.utf8_char(c)?;
                }
            }
        }
    }

    /// An escape at `self.i`: only the ones `canonical::write_str` writes.
    fn escape(&mut self) -> Result<(), String> {
        let at = self.i;
        let bad = || format!("non-canonical escape at byte {at}");
        match self.b.get(at + 1) {
            Some(b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't') => {
                self.i += 2;
                Ok(())
            }
            Some(b'u') => match self.b.get(at + 2..at + 6) {
                // A control character without a short form, in lower case.
                Some([b'0', b'0', h @ (b'0' | b'1'), l @ (b'0'..=b'9' | b'a'..=b'f')]) => {
                    let code = (hex(*h) << 4) | hex(*l);
                    if matches!(code, 0x08 | 0x09 | 0x0a | 0x0c | 0x0d) {
                        return Err(bad());
                    }
                    self.i += 6;
                    Ok(())
                }
                _ => Err(bad()),
            },
            _ => Err(bad()),
        }
    }

    /// One UTF-8 encoded character, lead byte `c` at `self.i` (not ASCII).
    fn utf8_char(&mut self, c: u8) -> Result<(), String> {
        let at = self.i;
        let cont =
            |k: usize, lo: u8, hi: u8| self.b.get(at + k).is_some_and(|&x| (lo..=hi).contains(&x));
        let len = match c {
            0xc2..=0xdf => cont(1, 0x80, 0xbf).then_some(2),
            0xe0 => (cont(1, 0xa0, 0xbf) && cont(2, 0x80, 0xbf)).then_some(3),
            0xe1..=0xec | 0xee..=0xef => (cont(1, 0x80, 0xbf) && cont(2, 0x80, 0xbf)).then_some(3),
            0xed => (cont(1, 0x80, 0x9f) && cont(2, 0x80, 0xbf)).then_some(3),
            0xf0 => {
                (cont(1, 0x90, 0xbf) && cont(2, 0x80, 0xbf) && cont(3, 0x80, 0xbf)).then_some(4)
            }
            0xf1..=0xf3 => {
                (cont(1, 0x80, 0xbf) && cont(2, 0x80, 0xbf) && cont(3, 0x80, 0xbf)).then_some(4)
            }
            0xf4 => {
                (cont(1, 0x80, 0x8f) && cont(2, 0x80, 0xbf) && cont(3, 0x80, 0xbf)).then_some(4)
            }
            _ => None,
        };
        match len {
            Some(n) => {
                self.i += n;
                Ok(())
            }
            None => Err(format!("invalid UTF-8 at byte {at}")),
        }
    }

    /// An integer at `self.i`: `-?(0|[1-9][0-9]*)`, in `i64` if negative
    /// and `u64` if not, and not `-0`. What follows is the caller's: a
    /// fraction, exponent or further digit fails there.
    fn number(&mut self) -> Result<(), String> {
        let at = self.i;
        let negative = self.b.get(at) == Some(&b'-');
        if negative {
            self.i += 1;
        }
        let mut n: u64 = 0;
        match self.b.get(self.i) {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                while let Some(&d) = self.b.get(self.i) {
                    if !d.is_ascii_digit() {
                        break;
                    }
                    n = n
                        .checked_mul(10)
                        .and_then(|n| n.checked_add(u64::from(d - b'0')))
                        .ok_or_else(|| format!("integer out of range at byte {at}"))?;
                    self.i += 1;
                }
            }
            _ => return Err(format!("bad number at byte {at}")),
        }
        if negative {
            if n == 0 {
                return Err(format!("-0 at byte {at}"));
            }
            if n > 1 << 63 {
                return Err(format!("integer out of range at byte {at}"));
            }
        }
        Ok(())
    }
}

/// The value of a hex digit already checked to be one.
fn hex(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical;
    use proptest::prelude::*;
    use proptest::sample::Index;
    use serde_json::{json, Number, Value};

    /// The definition: bytes are canonical when serde_json reads them and
    /// the encoder writes them back unchanged.
    fn oracle(b: &[u8]) -> bool {
        serde_json::from_slice::<Value>(b)
            .ok()
            .and_then(|v| canonical::to_vec(&v).ok())
            .as_deref()
            == Some(b)
    }

    fn agrees(b: &[u8]) -> Result<(), TestCaseError> {
        let got = check(b);
        prop_assert_eq!(
            got.is_ok(),
            oracle(b),
            "{:?}: check says {:?}",
            String::from_utf8_lossy(b),
            got
        );
        Ok(())
    }

    fn arb_char() -> impl Strategy<Value = char> {
        prop_oneof![
            4 => prop::sample::select(vec!['a', 'b', 'z', 'A', '0', ' ', '/', '{', ',']),
            2 => prop::sample::select(vec!['"', '\\', '\n', '\u{8}', '\u{c}', '\t', '\r']),
            2 => prop::sample::select(vec!['\u{0}', '\u{1}', '\u{b}', '\u{1f}', '\u{7f}']),
            2 => prop::sample::select(vec![
                'é', '\u{7ff}', '\u{800}', '\u{d7ff}', '\u{e000}', '\u{ff61}', '\u{ffff}',
                '\u{10000}', '\u{10ffff}',
            ]),
            1 => any::<char>(),
        ]
    }

    fn arb_string() -> impl Strategy<Value = String> {
        prop::collection::vec(arb_char(), 0..6).prop_map(|v| v.into_iter().collect())
    }

    /// Keys from a small alphabet, so members often share prefixes and
    /// the UTF-16 and code-point orders disagree.
    fn arb_key() -> impl Strategy<Value = String> {
        let c = prop::sample::select(vec![
            'a',
            'b',
            'A',
            'é',
            '\u{ff61}',
            '\u{10000}',
            '\u{e000}',
            '\n',
            '"',
            '\u{1}',
        ]);
        prop::collection::vec(c, 0..3).prop_map(|v| v.into_iter().collect())
    }

    fn arb_number() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (-20i64..300).prop_map(Value::from),
            prop::sample::select(vec![i64::MIN, i64::MAX, -1, 0]).prop_map(Value::from),
            Just(Value::from(u64::MAX)),
            prop::sample::select(vec![1.5, 0.0, -0.0, 2.0, 1e300, -7.25])
                .prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
        ]
    }

    fn arb_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            arb_number(),
            arb_string().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::btree_map(arb_key(), inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    #[derive(Clone, Debug)]
    enum Mutation {
        Swap(Index, Index),
        InsertSpace(Index),
        ChangeDigit(Index, u8),
        DuplicateMember(Index),
        AddSlashEscape(Index),
        UpperCaseHex(Index),
        EscapeLetter(Index),
        LongFormEscape(Index),
        Negate(Index),
        AddFraction(Index),
        Delete(Index),
        Insert(Index, u8),
        /// Bytes at the edges of UTF-8's ranges, into a string.
        InsertUtf8ish(Index, Vec<u8>),
    }

    fn arb_mutation() -> impl Strategy<Value = Mutation> {
        use Mutation::*;
        let i = any::<Index>;
        prop_oneof![
            1 => (i(), i()).prop_map(|(a, b)| Swap(a, b)),
            1 => i().prop_map(InsertSpace),
            1 => (i(), b'0'..=b'9').prop_map(|(a, d)| ChangeDigit(a, d)),
            3 => i().prop_map(DuplicateMember),
            2 => i().prop_map(AddSlashEscape),
            2 => i().prop_map(UpperCaseHex),
            1 => i().prop_map(EscapeLetter),
            1 => i().prop_map(LongFormEscape),
            1 => i().prop_map(Negate),
            1 => i().prop_map(AddFraction),
            1 => i().prop_map(Delete),
            1 => (i(), prop::sample::select(b"{}[]\",:-0e.\\ua".to_vec())).prop_map(|(a, c)| Insert(a, c)),
            3 => (i(), utf8ish()).prop_map(|(a, bytes)| InsertUtf8ish(a, bytes)),
        ]
    }

    /// A lead byte and as many continuation bytes as it calls for, from
    /// the edges of the valid ranges, sometimes one short.
    fn utf8ish() -> impl Strategy<Value = Vec<u8>> {
        let lead = prop::sample::select(vec![
            0x80u8, 0xc0, 0xc2, 0xdf, 0xe0, 0xed, 0xee, 0xef, 0xf0, 0xf4, 0xf5, 0xff,
        ]);
        let cont = || prop::sample::select(vec![0x7fu8, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0]);
        (lead, cont(), cont(), cont(), 0..4).prop_map(|(lead, c1, c2, c3, short)| {
            let want: usize = match lead {
                0xc0..=0xdf => 1,
                0xe0..=0xef => 2,
                0xf0..=0xf7 => 3,
                _ => 0,
            };
            let n = if short == 0 {
                want.saturating_sub(1)
            } else {
                want
            };
            [vec![lead], [c1, c2, c3][..n].to_vec()].concat()
        })
    }

    /// Positions of bytes that satisfy `f`, one picked by `ix`.
    fn pick(b: &[u8], ix: &Index, f: impl Fn(&[u8], usize) -> bool) -> Option<usize> {
        let at: Vec<usize> = (0..b.len()).filter(|&k| f(b, k)).collect();
        (!at.is_empty()).then(|| at[ix.index(at.len())])
    }

    /// The end of the member or element that starts at `from`: the next `,`
    /// or closing bracket at its own level.
    fn member_end(b: &[u8], from: usize) -> Option<usize> {
        let (mut depth, mut in_str, mut esc) = (0usize, false, false);
        for (k, &c) in b.iter().enumerate().skip(from) {
            if in_str {
                if esc {
                    esc = false;
                } else if c == b'\\' {
                    esc = true;
                } else if c == b'"' {
                    in_str = false;
                }
                continue;
            }
            match c {
                b'"' => in_str = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' if depth == 0 => return Some(k),
                b'}' | b']' => depth -= 1,
                b',' if depth == 0 => return Some(k),
                _ => {}
            }
        }
        None
    }

    fn mutate(b: &mut Vec<u8>, m: &Mutation) {
        use Mutation::*;
        if b.is_empty() {
            return;
        }
        let any = |_: &[u8], _: usize| true;
        match m {
            Swap(x, y) => {
                let (x, y) = (x.index(b.len()), y.index(b.len()));
                b.swap(x, y);
            }
            InsertSpace(x) => b.insert(x.index(b.len() + 1), b' '),
            ChangeDigit(x, d) => {
                if let Some(k) = pick(b, x, |b, k| b[k].is_ascii_digit()) {
                    b[k] = *d;
                }
            }
            DuplicateMember(x) => {
                if let Some(k) = pick(b, x, |b, k| b[k] == b'{') {
                    if let Some(end) = member_end(b, k + 1).filter(|&e| e > k + 1) {
                        let mut member = b[k + 1..end].to_vec();
                        member.push(b',');
                        b.splice(k + 1..k + 1, member);
                    }
                }
            }
            AddSlashEscape(x) => {
                if let Some(k) = pick(b, x, |b, k| b[k] == b'"') {
                    b.splice(k + 1..k + 1, *b"\\/");
                }
            }
            UpperCaseHex(x) => {
                if let Some(k) = pick(b, x, |b, k| b[k..].starts_with(b"\\u")) {
                    let end = (k + 6).min(b.len());
                    b[k + 2..end].make_ascii_uppercase();
                }
            }
            EscapeLetter(x) => {
                if let Some(k) = pick(b, x, |b, k| b[k].is_ascii_alphabetic()) {
                    let e = format!("\\u{:04x}", b[k]);
                    b.splice(k..k + 1, e.into_bytes());
                }
            }
            LongFormEscape(x) => {
                let short = |b: &[u8], k: usize| {
                    b[k] == b'\\' && matches!(b.get(k + 1), Some(b'b' | b'f' | b'n' | b'r' | b't'))
                };
                if let Some(k) = pick(b, x, short) {
                    let c = match b[k + 1] {
                        b'b' => 8,
                        b'f' => 12,
                        b'n' => 10,
                        b'r' => 13,
                        _ => 9,
                    };
                    b.splice(k..k + 2, format!("\\u{c:04x}").into_bytes());
                }
            }
            Negate(x) => {
                if let Some(k) = pick(b, x, |b, k| b[k].is_ascii_digit()) {
                    b.insert(k, b'-');
                }
            }
            AddFraction(x) => {
                if let Some(k) = pick(b, x, |b, k| b[k].is_ascii_digit()) {
                    b.splice(k + 1..k + 1, *b".0");
                }
            }
            Delete(x) => {
                if let Some(k) = pick(b, x, any) {
                    b.remove(k);
                }
            }
            Insert(x, c) => b.insert(x.index(b.len() + 1), *c),
            InsertUtf8ish(x, bytes) => {
                if let Some(k) = pick(b, x, |b, k| b[k] == b'"') {
                    b.splice(k + 1..k + 1, bytes.iter().copied());
                }
            }
        }
    }

    /// Integers at and just past the edges of `i64` and `u64`, written out.
    fn arb_edge_number() -> impl Strategy<Value = Vec<u8>> {
        let edge = prop::sample::select(vec![
            i128::from(i64::MIN),
            i128::from(i64::MAX),
            i128::from(u64::MAX),
            0,
        ]);
        let flags = (any::<bool>(), any::<bool>());
        (edge, -2i128..=2, flags).prop_map(|(e, d, (wrap, minus))| {
            let n = e + d;
            // A sign on a non-negative value makes -0 and too-small negatives.
            let n = if minus && n >= 0 {
                format!("-{n}")
            } else {
                n.to_string()
            };
            if wrap { format!("[{n}]") } else { n }.into_bytes()
        })
    }

    fn arb_doc() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![9 => arb_value_doc(), 1 => arb_edge_number()]
    }

    fn arb_value_doc() -> impl Strategy<Value = Vec<u8>> {
        (
            arb_value(),
            0..4u8,
            prop::collection::vec(arb_mutation(), 0..3),
        )
            .prop_map(|(v, how, muts)| {
                let mut b = match how {
                    0 | 1 => canonical::to_vec(&v)
                        .or_else(|_| serde_json::to_vec(&v))
                        .unwrap_or_default(),
                    2 => serde_json::to_vec(&v).unwrap_or_default(),
                    _ => serde_json::to_vec_pretty(&v).unwrap_or_default(),
                };
                for m in &muts {
                    mutate(&mut b, m);
                }
                b
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn agrees_with_parse_and_reencode(b in arb_doc()) {
            agrees(&b)?;
        }

        #[test]
        fn canonical_encodings_pass(v in arb_value()) {
            if let Ok(b) = canonical::to_vec(&v) {
                prop_assert!(check(&b).is_ok(), "{:?}: {:?}", String::from_utf8_lossy(&b), check(&b));
            }
        }

        #[test]
        fn token_soup_agrees(s in "[\\[\\]{}\",:0-9a-fnrtu\\\\ .eE+-]{0,40}") {
            agrees(s.as_bytes())?;
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn raw_bytes_agree(b in any::<Vec<u8>>()) {
            agrees(&b)?;
        }

        #[test]
        fn raw_strings_agree(s in "\\PC{0,60}") {
            agrees(s.as_bytes())?;
            agrees(format!("\"{s}\"").as_bytes())?;
        }
    }

    fn ok(s: &str) {
        assert!(
            check(s.as_bytes()).is_ok(),
            "{s:?}: {:?}",
            check(s.as_bytes())
        );
        assert!(oracle(s.as_bytes()), "{s:?}");
    }

    fn bad(s: &str) {
        assert!(check(s.as_bytes()).is_err(), "{s:?} accepted");
        assert!(!oracle(s.as_bytes()), "{s:?}");
    }

    #[test]
    fn numbers() {
        for s in ["0", "-1", "7", "[0,-5,12]"] {
            ok(s);
        }
        ok(&u64::MAX.to_string());
        ok(&i64::MIN.to_string());
        ok(&i64::MAX.to_string());
        bad("18446744073709551616"); // u64::MAX + 1
        bad("-9223372036854775809"); // i64::MIN - 1
        bad("99999999999999999999999");
        for s in [
            "-0", "01", "-01", "1.0", "1e3", "1E3", "+1", "-", "[-]", "0x1", "1 ",
        ] {
            bad(s);
        }
        let e = check(b"[1,-0]").unwrap_err();
        assert!(e.contains("byte 3"), "{e}");
    }

    #[test]
    fn strings() {
        for s in [
            r#""""#,
            r#""a\"b\\c""#,
            r#""\b\f\n\r\t""#,
            r#""\u0000\u0001\u000b\u001f""#,
            "\"\u{7f}é\u{ff61}\u{10000}/\"",
        ] {
            ok(s);
        }
        for s in [
            r#""\u00e9""#, // an escaped non-control
            "\"\\u00E9\"", // an upper-case escape of a non-control
            r#""\u001F""#, // upper-case hex
            r#""\u000a""#, // a control with a short form
            r#""\u0008""#,
            r#""\u0041""#,
            r#""\/""#,
            r#""\u007f""#,
            "\"\u{1}\"", // an unescaped control
            "\"\t\"",
            r#""\x""#,
            r#""\u00""#,
            r#""abc"#,
        ] {
            bad(s);
        }
        // Not UTF-8: a lone continuation byte, an encoded surrogate, an
        // overlong form, a truncated sequence.
        for b in [
            &b"\"\x80\""[..],
            b"\"\xed\xa0\x80\"",
            b"\"\xc0\xaf\"",
            b"\"\xe2\x82\"",
        ] {
            assert!(check(b).is_err());
            assert!(!oracle(b));
        }
    }

    #[test]
    fn structure() {
        for s in [
            "null",
            "true",
            "false",
            "[]",
            "{}",
            r#"{"a":[{}],"b":null}"#,
        ] {
            ok(s);
        }
        for s in [
            "",
            " ",
            "nul",
            "truex",
            "[1,]",
            "[,1]",
            "{,}",
            r#"{"a"}"#,
            r#"{"a":1,}"#,
            "{1:2}",
            "[] ",
            " []",
            "[1 ]",
            "{\"a\": 1}",
            "[1]\n",
            "[][]",
            "]",
            "[\"a\":1]",
        ] {
            bad(s);
        }
    }

    #[test]
    fn member_order() {
        ok(r#"{"A":1,"a":2,"b":3}"#);
        bad(r#"{"a":1,"A":2}"#);
        let e = check(br#"{"a":1,"a":2}"#).unwrap_err();
        assert!(e.contains("duplicate"), "{e}");
        bad(r#"{"a":1,"b":2,"a":3}"#);
        // A prefix sorts first.
        ok(r#"{"a":1,"ab":2}"#);
        bad(r#"{"ab":1,"a":2}"#);
        // U+10000 (surrogates D800 DC00) sorts before U+FF61 by UTF-16 code
        // units, as JCS orders, though after it by code point.
        ok("{\"\u{10000}\":0,\"\u{ff61}\":{}}");
        bad("{\"\u{ff61}\":{},\"\u{10000}\":0}");
        // The example in `canonical`'s tests.
        ok("{\"A\":-5,\"a\":[true,null,\"x\\\"y\\\\z\\n\\u0001é\"],\"b\":1,\"\u{10000}\":0,\"\u{ff61}\":{}}");
        // Escaped keys compare by their contents: "\n" (0x0a) < "\"" (0x22) < "\\" (0x5c).
        ok(r#"{"\u0001":0,"\n":1,"\"":2,"\\":3,"a":4}"#);
        bad(r#"{"\"":2,"\n":1}"#);
        bad(r#"{"\n":1,"\n":1}"#);
    }

    #[test]
    fn nesting_is_limited_as_serde_json_limits_it() {
        let nest = |n: usize, open: &str, close: &str| open.repeat(n) + &close.repeat(n);
        ok(&nest(127, "[", "]"));
        bad(&nest(128, "[", "]"));
        ok(&(nest(126, "{\"a\":", "}").replace("{\"a\":}", "{\"a\":[]}")));
        for n in 120..135 {
            for s in [
                nest(n, "[", "]"),
                nest(n, "{\"a\":", "}").replace(":}", ":0}"),
            ] {
                assert_eq!(
                    check(s.as_bytes()).is_ok(),
                    oracle(s.as_bytes()),
                    "depth {n}"
                );
            }
        }
        let e = check(nest(200, "[", "]").as_bytes()).unwrap_err();
        assert!(e.contains("deep"), "{e}");
        // Deep hostile input fails fast rather than exhausting the stack.
        assert!(check("[".repeat(1_000_000).as_bytes()).is_err());
    }

    #[test]
    fn entries() {
        let v = json!({
            "kind": "statement", "node": "n", "prev": "ab".repeat(32), "seq": 123,
            "time": "2026-12-01T00:00:00.000Z",
            "payload": {"subject": "alice", "scopes": ["read", "write"], "n": -3, "ok": true},
        });
        let b = canonical::to_vec(&v).unwrap();
        assert_eq!(check(&b), Ok(()));
        let e = check(br#"{"kind":"x","node":"n","seq":1,"prev":"00"}"#).unwrap_err();
        assert!(e.contains("out of order at byte 31"), "{e}");
    }
}
