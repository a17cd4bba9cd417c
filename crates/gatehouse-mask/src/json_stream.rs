//! Masking a JSON document as it streams past, in bounded memory.
//!
//! The document arrives in chunks of any size (an HTTP body, a tool
//! result). Structure (`{ } [ ] : ,` and whitespace) goes out as it comes;
//! each string, number and literal is held until it ends, then written
//! masked: by the first field rule whose JSON path covers it (whatever its
//! content), else by the detectors. A value a rule covers that is an object
//! or array is held whole and replaced by one masked string. Nothing is
//! held longer than one token, so a gigabyte-long array of records passes
//! in the memory of its longest value, and a value longer than the limit
//! stops the document (fail closed) rather than growing without bound.

use crate::engine::{MaskTally, Masked, MaskingEngine, Scratch, TextKind};
use crate::jsonpath::PathStep;
use crate::rules::ColumnTarget;

/// Why a streamed document could not be masked; the rest must be withheld.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonStreamError {
    /// Not JSON (at byte `at` of the document).
    #[error("the body is not valid JSON (at byte {at}: {what})")]
    Syntax {
        /// Offset in the whole document.
        at: u64,
        /// What was wrong.
        what: &'static str,
    },
    /// One value is longer than the gateway holds to mask it.
    #[error("a JSON value is longer than {limit} bytes, the most the gateway holds to mask one")]
    ValueTooLarge {
        /// The limit.
        limit: usize,
    },
    /// The document ended in the middle.
    #[error("the JSON body ended before the document was complete")]
    Truncated,
    /// Objects and arrays nest deeper than the gateway follows.
    #[error("the JSON body nests deeper than {0} levels, the most the gateway follows")]
    TooDeep(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// A value (the root, after `[`, `,` in an array, or `:`).
    Value,
    /// A key or `}` right after `{`.
    FirstKey,
    /// A key after `,` in an object.
    Key,
    /// `:` after a key.
    Colon,
    /// `,` or the container's end.
    CommaOrEnd,
    /// Whitespace only: the root value is complete.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frame {
    Object,
    Array,
}

/// What the bytes being held are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Held {
    Nothing,
    /// A string; `key` when it is an object member's name.
    Str {
        key: bool,
        escaped: bool,
    },
    /// A number or literal.
    Scalar,
    /// An object or array a rule covers, held whole.
    Covered {
        rule: usize,
        depth: usize,
        in_str: bool,
        escaped: bool,
    },
}

/// How deep objects and arrays may nest: each level costs a frame and a
/// path step, so without a bound `[[[[…` would make memory grow with the
/// body (serde_json stops at 128; browsers' parsers at a few thousand).
pub const MAX_DEPTH: usize = 512;

/// One document's masking state. Feed it the document's bytes in order.
#[derive(Debug)]
pub struct JsonStream {
    stack: Vec<Frame>,
    /// The path of the value being read: one step per open container.
    path: Vec<PathStep>,
    expect: Expect,
    held: Held,
    token: Vec<u8>,
    /// A string value's rule, chosen when it began.
    token_rule: Option<usize>,
    /// Right after `[`: a `]` may close the array where a value could start.
    fresh: bool,
    /// Bytes of the document before the current chunk.
    offset: u64,
    limit: usize,
    view: Vec<u8>,
    escapes: Vec<crate::unescape::Escape>,
    /// A rule's mask before it is written as JSON.
    masked: Vec<u8>,
    /// A document inside another's string (`Strategy::JsonDocument`): one
    /// level only.
    nested: bool,
}

impl JsonStream {
    /// A new document; no value may be longer than `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            stack: Vec::new(),
            path: Vec::new(),
            expect: Expect::Value,
            held: Held::Nothing,
            token: Vec::new(),
            token_rule: None,
            fresh: false,
            offset: 0,
            limit,
            view: Vec::new(),
            escapes: Vec::new(),
            masked: Vec::new(),
            nested: false,
        }
    }

    /// Masks `input`, the next bytes of the document, appending what can be
    /// sent to `out`. After an error nothing more may be sent.
    pub fn feed(
        &mut self,
        engine: &MaskingEngine,
        input: &[u8],
        out: &mut Vec<u8>,
        scratch: &mut Scratch,
        tally: &mut MaskTally,
    ) -> Result<(), JsonStreamError> {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            match self.held {
                Held::Str { key, escaped } => {
                    if escaped {
                        self.hold(&[b])?;
                        i += 1;
                        self.held = Held::Str {
                            key,
                            escaped: false,
                        };
                        continue;
                    }
                    // Take the run up to the next quote or backslash at once.
                    let run = memchr::memchr2(b'"', b'\\', &input[i..]).unwrap_or(input.len() - i);
                    if run > 0 {
                        self.hold(&input[i..i + run])?;
                        i += run;
                        continue;
                    }
                    self.hold(&[b])?;
                    i += 1;
                    if b == b'\\' {
                        self.held = Held::Str { key, escaped: true };
                    } else {
                        self.held = Held::Nothing;
                        if key {
                            self.end_key(engine, out, scratch, tally);
                        } else {
                            self.end_value(engine, out, scratch, tally);
                        }
                    }
                }
                Held::Scalar => {
                    if scalar_byte(b) {
                        self.hold(&[b])?;
                        i += 1;
                    } else {
                        self.held = Held::Nothing;
                        self.check_scalar(i)?;
                        self.end_value(engine, out, scratch, tally);
                        // `b` is read again as structure.
                    }
                }
                Held::Covered {
                    rule,
                    depth,
                    in_str,
                    escaped,
                } => {
                    self.hold(&[b])?;
                    i += 1;
                    let (mut depth, mut in_str, mut escaped) = (depth, in_str, escaped);
                    if in_str {
                        if escaped {
                            escaped = false;
                        } else if b == b'\\' {
                            escaped = true;
                        } else if b == b'"' {
                            in_str = false;
                        }
                    } else {
                        match b {
                            b'"' => in_str = true,
                            b'{' | b'[' if depth >= MAX_DEPTH => {
                                return Err(JsonStreamError::TooDeep(MAX_DEPTH))
                            }
                            b'{' | b'[' => depth += 1,
                            b'}' | b']' => depth -= 1,
                            _ => {}
                        }
                    }
                    if depth == 0 {
                        self.held = Held::Nothing;
                        self.write_covered(engine, rule, out, tally);
                        self.value_done();
                    } else {
                        self.held = Held::Covered {
                            rule,
                            depth,
                            in_str,
                            escaped,
                        };
                    }
                }
                Held::Nothing => {
                    self.structure(engine, b, i, out)?;
                    i += 1;
                }
            }
        }
        self.offset += input.len() as u64;
        Ok(())
    }

    /// The document ended: a number at the root is written, anything
    /// unfinished is an error.
    pub fn finish(
        &mut self,
        engine: &MaskingEngine,
        out: &mut Vec<u8>,
        scratch: &mut Scratch,
        tally: &mut MaskTally,
    ) -> Result<(), JsonStreamError> {
        if self.held == Held::Scalar {
            self.held = Held::Nothing;
            self.check_scalar(0)?;
            self.end_value(engine, out, scratch, tally);
        }
        if self.expect == Expect::Done && self.held == Held::Nothing {
            Ok(())
        } else {
            Err(JsonStreamError::Truncated)
        }
    }

    fn syntax(&self, at: usize, what: &'static str) -> JsonStreamError {
        JsonStreamError::Syntax {
            at: self.offset + at as u64,
            what,
        }
    }

    fn hold(&mut self, bytes: &[u8]) -> Result<(), JsonStreamError> {
        if self.token.len() + bytes.len() > self.limit {
            return Err(JsonStreamError::ValueTooLarge { limit: self.limit });
        }
        self.token.extend_from_slice(bytes);
        Ok(())
    }

    /// One byte outside any token.
    fn structure(
        &mut self,
        engine: &MaskingEngine,
        b: u8,
        at: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), JsonStreamError> {
        if matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            out.push(b);
            return Ok(());
        }
        match (self.expect, b) {
            (Expect::Value, _) => self.begin_value(engine, b, at, out),
            (Expect::FirstKey, b'}') => {
                out.push(b);
                self.close(Frame::Object, at)
            }
            (Expect::FirstKey | Expect::Key, b'"') => {
                self.token.clear();
                self.token.push(b);
                self.held = Held::Str {
                    key: true,
                    escaped: false,
                };
                Ok(())
            }
            (Expect::Colon, b':') => {
                out.push(b);
                self.expect = Expect::Value;
                Ok(())
            }
            (Expect::CommaOrEnd, b',') => {
                out.push(b);
                match self.stack.last() {
                    Some(Frame::Array) => {
                        if let Some(PathStep::Index(n)) = self.path.last_mut() {
                            *n += 1;
                        }
                        self.expect = Expect::Value;
                    }
                    _ => self.expect = Expect::Key,
                }
                Ok(())
            }
            (Expect::CommaOrEnd, b'}') => {
                out.push(b);
                self.close(Frame::Object, at)
            }
            (Expect::CommaOrEnd, b']') => {
                out.push(b);
                self.close(Frame::Array, at)
            }
            (Expect::Done, _) => Err(self.syntax(at, "more after the document's end")),
            _ => Err(self.syntax(at, "unexpected character")),
        }
    }

    fn begin_value(
        &mut self,
        engine: &MaskingEngine,
        b: u8,
        at: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), JsonStreamError> {
        // An empty array closes where a value could start.
        if b == b']' && self.stack.last() == Some(&Frame::Array) && self.fresh {
            out.push(b);
            return self.close(Frame::Array, at);
        }
        self.fresh = false;
        let rule = self.rule_here(engine);
        self.token.clear();
        match b {
            b'{' | b'[' => {
                if let Some(rule) = rule {
                    self.token.push(b);
                    self.held = Held::Covered {
                        rule,
                        depth: 1,
                        in_str: false,
                        escaped: false,
                    };
                    return Ok(());
                }
                if self.stack.len() >= MAX_DEPTH {
                    return Err(JsonStreamError::TooDeep(MAX_DEPTH));
                }
                out.push(b);
                if b == b'{' {
                    self.stack.push(Frame::Object);
                    self.path.push(PathStep::Key(String::new()));
                    self.expect = Expect::FirstKey;
                } else {
                    self.stack.push(Frame::Array);
                    self.path.push(PathStep::Index(0));
                    self.expect = Expect::Value;
                    self.fresh = true;
                }
                Ok(())
            }
            b'"' => {
                self.token.push(b);
                self.token_rule = rule;
                self.held = Held::Str {
                    key: false,
                    escaped: false,
                };
                Ok(())
            }
            b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => {
                self.token.push(b);
                self.token_rule = rule;
                self.held = Held::Scalar;
                Ok(())
            }
            _ => Err(self.syntax(at, "expected a value")),
        }
    }

    fn close(&mut self, frame: Frame, at: usize) -> Result<(), JsonStreamError> {
        if self.stack.pop() != Some(frame) {
            return Err(self.syntax(at, "a bracket closes what it did not open"));
        }
        self.path.pop();
        self.value_done();
        Ok(())
    }

    /// A value ended: what may come next.
    fn value_done(&mut self) {
        self.fresh = false;
        self.expect = if self.stack.is_empty() {
            Expect::Done
        } else {
            Expect::CommaOrEnd
        };
    }

    /// The first field rule covering the value about to start.
    fn rule_here(&self, engine: &MaskingEngine) -> Option<usize> {
        if self.path.is_empty() {
            return None;
        }
        engine
            .rules()
            .iter()
            .position(|r| matches!(&r.target, ColumnTarget::JsonPath(p) if p.matches(&self.path)))
    }

    fn check_scalar(&self, at: usize) -> Result<(), JsonStreamError> {
        let t = &self.token;
        let ok = match t.first() {
            Some(b't') => t == b"true",
            Some(b'f') => t == b"false",
            Some(b'n') => t == b"null",
            _ => valid_number(t),
        };
        if ok {
            Ok(())
        } else {
            Err(self.syntax(at, "not a number or literal"))
        }
    }

    /// A member name ended: it becomes the path's last step, and it is
    /// written through the detectors (names can be data: maps keyed by email).
    fn end_key(
        &mut self,
        engine: &MaskingEngine,
        out: &mut Vec<u8>,
        scratch: &mut Scratch,
        tally: &mut MaskTally,
    ) {
        let content = &self.token[1..self.token.len() - 1];
        let name: &[u8] =
            if crate::unescape::build(content, true, &mut self.view, &mut self.escapes) {
                &self.view
            } else {
                content
            };
        // The member's step reuses its string: no allocation per key.
        if let Some(last) = self.path.last_mut() {
            let name = String::from_utf8_lossy(name);
            match last {
                PathStep::Key(k) => {
                    k.clear();
                    k.push_str(&name);
                }
                other => *other = PathStep::Key(name.into_owned()),
            }
        }
        if !engine.mask_inline(&self.token, TextKind::Json, out, scratch, tally) {
            out.extend_from_slice(&self.token);
        }
        self.expect = Expect::Colon;
    }

    /// A string, number or literal ended: written masked.
    fn end_value(
        &mut self,
        engine: &MaskingEngine,
        out: &mut Vec<u8>,
        scratch: &mut Scratch,
        tally: &mut MaskTally,
    ) {
        if let Some(rule) = self.token_rule.take() {
            let is_str = self.token.first() == Some(&b'"');
            let value: &[u8] = if is_str {
                let content = &self.token[1..self.token.len() - 1];
                if crate::unescape::build(content, true, &mut self.view, &mut self.escapes) {
                    &self.view
                } else {
                    content
                }
            } else {
                &self.token
            };
            let inside = is_str
                && !self.nested
                && engine.rules()[rule].strategy == crate::Strategy::JsonDocument;
            // The document inside is the string decoded whole (the view
            // above is built for detectors, not for a parser).
            let document = inside
                .then(|| serde_json::from_slice::<String>(&self.token).ok())
                .flatten()
                // A document is an object; a bare value is redacted.
                .filter(|d| d.trim_start().starts_with('{'));
            let written = document.is_some_and(|d| {
                write_document(engine, rule, d.as_bytes(), self.limit, out, scratch, tally)
            });
            if !written {
                write_by_rule(engine, rule, value, &mut self.masked, out, tally);
            }
        } else if !engine.mask_inline(&self.token, TextKind::Json, out, scratch, tally) {
            out.extend_from_slice(&self.token);
        }
        self.value_done();
    }

    /// An object or array a rule covers ended: one masked string for it.
    fn write_covered(
        &mut self,
        engine: &MaskingEngine,
        rule: usize,
        out: &mut Vec<u8>,
        tally: &mut MaskTally,
    ) {
        write_by_rule(engine, rule, &self.token, &mut self.masked, out, tally);
    }
}

/// Writes `value`, a JSON document held in a string, masked as a document
/// of its own and written back as a JSON string. `false` (nothing written)
/// when it is not a JSON document.
fn write_document(
    engine: &MaskingEngine,
    rule: usize,
    value: &[u8],
    limit: usize,
    out: &mut Vec<u8>,
    scratch: &mut Scratch,
    tally: &mut MaskTally,
) -> bool {
    let mut inner = JsonStream::new(limit);
    inner.nested = true;
    let mut doc = Vec::with_capacity(value.len());
    let read = inner
        .feed(engine, value, &mut doc, scratch, tally)
        .and_then(|()| inner.finish(engine, &mut doc, scratch, tally));
    if read.is_err() {
        return false;
    }
    tally.bump_rule(rule);
    write_json_string(&doc, out);
    true
}

/// Writes `value` masked by field rule `rule`, as JSON (`null` for the null
/// strategy); `masked` is a reused buffer.
fn write_by_rule(
    engine: &MaskingEngine,
    rule: usize,
    value: &[u8],
    masked: &mut Vec<u8>,
    out: &mut Vec<u8>,
    tally: &mut MaskTally,
) {
    masked.clear();
    match engine.mask_by_rule(rule, value, masked, tally) {
        Masked::Null => out.extend_from_slice(b"null"),
        _ => write_json_string(masked, out),
    }
}

fn scalar_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'+' | b'.')
}

/// RFC 8259's number grammar.
fn valid_number(t: &[u8]) -> bool {
    // The end of the run of digits from `i`.
    let digits = |i: usize| {
        i + t[i.min(t.len())..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
    };
    let mut i = usize::from(t.first() == Some(&b'-'));
    match t.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => i = digits(i),
        _ => return false,
    }
    if t.get(i) == Some(&b'.') {
        let end = digits(i + 1);
        if end == i + 1 {
            return false;
        }
        i = end;
    }
    if matches!(t.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(t.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let end = digits(i);
        if end == i {
            return false;
        }
        i = end;
    }
    i == t.len()
}

/// Writes `s` as a JSON string (the masks are ASCII or UTF-8 text).
fn write_json_string(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in s {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0..=0x1f => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 15)]);
            }
            _ => out.push(b),
        }
    }
    out.push(b'"');
}
