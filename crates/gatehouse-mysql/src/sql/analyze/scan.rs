//! A small scanner over the lexer's canonical text, for what sqlparser's
//! tree does not tell or cannot parse: the statement's leading keywords
//! (which decide how it is analysed), whether a second statement follows,
//! the `?` placeholders, a bound on how deeply its expressions nest, the
//! string literals to redact, and the few statements analysed from their
//! keywords alone (`PREPARE … FROM '…'`, `LOAD DATA`, `CREATE USER`…).
//!
//! The canonical text has no comments, strings as `'…'` and quoted names
//! as `` `…` ``; the scanner still skips comments and reads `"…"` as a
//! string the way sqlparser's MySQL dialect does, so that both always see
//! the same tokens. It is linear in the text and never recurses.

use super::AnalyzeError;
use gatehouse_sql::TableRef;
use std::ops::Range;

/// What stands in a recorded text for each literal of a statement that
/// holds a secret (the form gatehouse-sql writes, so records read alike).
pub(super) const PLACEHOLDER: &str = "'[masked:password]'";

/// A token's kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// A keyword or unquoted name.
    Word,
    /// A `` `quoted` `` name.
    Ident,
    /// A `'…'` or `"…"` string literal.
    Str,
    /// A word starting with a digit (a number, or a name such as `1abc`).
    Num,
    /// One punctuation character (operators are split into characters).
    Punct(char),
}

/// One token and where it is in the text.
#[derive(Clone, Debug)]
pub(super) struct Token {
    pub(super) kind: Kind,
    pub(super) span: Range<usize>,
}

/// A text and its tokens.
pub(super) struct Tokens<'a> {
    pub(super) text: &'a str,
    pub(super) list: Vec<Token>,
}

/// Words that join two operands into a left-deep chain (`a OR b OR c`),
/// which sqlparser builds without counting against its recursion limit.
const CHAIN_WORDS: &[&str] = &[
    "AND",
    "OR",
    "XOR",
    "NOT",
    "IS",
    "LIKE",
    "REGEXP",
    "RLIKE",
    "BETWEEN",
    "IN",
    "DIV",
    "MOD",
    "COLLATE",
    "MEMBER",
    "SOUNDS",
    "ESCAPE",
    "UNION",
    "EXCEPT",
    "INTERSECT",
    "MINUS",
];

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// Scans `text`. Only an unterminated quote or comment fails.
pub(super) fn scan(text: &str) -> Result<Tokens<'_>, AnalyzeError> {
    let b = text.as_bytes();
    let mut list = Vec::new();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        let start = i;
        let kind = match c {
            b' ' | b'\t'..=b'\r' => {
                i += 1;
                continue;
            }
            b'#' => {
                i = line_end(b, i);
                continue;
            }
            b'-' if b.get(i + 1) == Some(&b'-')
                && b.get(i + 2).is_some_and(|x| x.is_ascii_whitespace()) =>
            {
                i = line_end(b, i);
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = match text.get(i + 2..).and_then(|rest| rest.find("*/")) {
                    Some(at) => i + 2 + at + 2,
                    None => return Err(unterminated("comment", i)),
                };
                continue;
            }
            b'\'' | b'"' => {
                i = closing(b, i, c, true).ok_or_else(|| unterminated("string", start))?;
                Kind::Str
            }
            b'`' => {
                i = closing(b, i, c, false)
                    .ok_or_else(|| unterminated("quoted identifier", start))?;
                Kind::Ident
            }
            _ if is_ident_byte(c) => {
                while b.get(i).is_some_and(|&x| is_ident_byte(x)) {
                    i += 1;
                }
                if c.is_ascii_digit() {
                    Kind::Num
                } else {
                    Kind::Word
                }
            }
            _ => {
                i += 1;
                Kind::Punct(char::from(c))
            }
        };
        list.push(Token {
            kind,
            span: start..i,
        });
    }
    Ok(Tokens { text, list })
}

fn unterminated(what: &str, at: usize) -> AnalyzeError {
    AnalyzeError::Parse(format!("unterminated {what} starting at byte {at}"))
}

fn line_end(b: &[u8], from: usize) -> usize {
    b[from..]
        .iter()
        .position(|&x| x == b'\n')
        .map_or(b.len(), |p| from + p + 1)
}

/// The index just past the quote closing the one at `open`.
fn closing(b: &[u8], open: usize, quote: u8, backslash: bool) -> Option<usize> {
    let mut i = open + 1;
    loop {
        match *b.get(i)? {
            b'\\' if backslash => i += 2,
            x if x == quote => {
                if b.get(i + 1) == Some(&quote) {
                    i += 2;
                } else {
                    return Some(i + 1);
                }
            }
            _ => i += 1,
        }
    }
}

impl<'a> Tokens<'a> {
    pub(super) fn len(&self) -> usize {
        self.list.len()
    }

    pub(super) fn kind(&self, i: usize) -> Option<Kind> {
        self.list.get(i).map(|t| t.kind)
    }

    /// The token's text as written.
    pub(super) fn text_of(&self, i: usize) -> &'a str {
        self.list
            .get(i)
            .and_then(|t| self.text.get(t.span.clone()))
            .unwrap_or("")
    }

    /// Whether token `i` is the keyword `kw` (given in upper case).
    pub(super) fn is(&self, i: usize, kw: &str) -> bool {
        self.kind(i) == Some(Kind::Word) && self.text_of(i).eq_ignore_ascii_case(kw)
    }

    /// Whether token `i` is one of the keywords `kws`.
    pub(super) fn is_any(&self, i: usize, kws: &[&str]) -> bool {
        kws.iter().any(|kw| self.is(i, kw))
    }

    pub(super) fn punct(&self, i: usize, c: char) -> bool {
        self.kind(i) == Some(Kind::Punct(c))
    }

    /// Token `i` in upper case when it is a word, for messages and routing.
    pub(super) fn upper(&self, i: usize) -> Option<String> {
        (self.kind(i) == Some(Kind::Word)).then(|| self.text_of(i).to_ascii_uppercase())
    }

    /// A name part: an unquoted or quoted identifier, as the server reads it.
    pub(super) fn part(&self, i: usize) -> Option<String> {
        let raw = self.text_of(i);
        match self.kind(i)? {
            Kind::Word | Kind::Num => Some(raw.to_string()),
            Kind::Ident => Some(raw.get(1..raw.len().saturating_sub(1))?.replace("``", "`")),
            _ => None,
        }
    }

    /// A table name `t` or `db.t` at `i`, and the index after it.
    pub(super) fn name(&self, i: usize) -> Option<(TableRef, usize)> {
        let first = self.part(i)?;
        if self.punct(i + 1, '.') {
            let second = self.part(i + 2)?;
            return Some((
                TableRef {
                    schema: Some(first),
                    name: second,
                },
                i + 3,
            ));
        }
        Some((
            TableRef {
                schema: None,
                name: first,
            },
            i + 1,
        ))
    }

    /// The value of the string literal at `i`.
    pub(super) fn string(&self, i: usize) -> Option<String> {
        if self.kind(i)? != Kind::Str {
            return None;
        }
        let raw = self.text_of(i);
        let quote = raw.chars().next()?;
        Some(unescape(raw.get(1..raw.len().saturating_sub(1))?, quote))
    }

    /// Whether anything but `;` follows a `;`: a second statement.
    pub(super) fn second_statement(&self) -> bool {
        self.list
            .iter()
            .skip_while(|t| t.kind != Kind::Punct(';'))
            .any(|t| t.kind != Kind::Punct(';'))
    }

    /// The `?` parameter markers.
    pub(super) fn placeholders(&self) -> usize {
        self.list
            .iter()
            .filter(|t| t.kind == Kind::Punct('?'))
            .count()
    }

    /// An upper bound on how deeply the parse tree can nest: parentheses
    /// plus the operators chained at each open level (a comma or `;` ends a
    /// chain). sqlparser builds `a OR b OR …` as a tree as deep as the chain
    /// is long without counting it against its recursion limit, and every
    /// walk of such a tree, its drop included, recurses that deep.
    pub(super) fn nesting(&self) -> usize {
        let mut levels: Vec<usize> = vec![0];
        let (mut chained, mut max) = (0usize, 0usize);
        for (i, t) in self.list.iter().enumerate() {
            match t.kind {
                Kind::Punct('(') => levels.push(0),
                Kind::Punct(')') if levels.len() > 1 => {
                    chained -= levels.pop().unwrap_or(0);
                }
                Kind::Punct(',' | ';') => {
                    if let Some(last) = levels.last_mut() {
                        chained -= *last;
                        *last = 0;
                    }
                }
                Kind::Punct('.' | '?' | '@' | ')') => {}
                Kind::Punct(_) => chain(&mut levels, &mut chained),
                Kind::Word if self.is_any(i, CHAIN_WORDS) => chain(&mut levels, &mut chained),
                _ => {}
            }
            max = max.max(chained + levels.len());
        }
        max
    }

    /// The text with every string literal, and with `numbers` every number
    /// too (`0x…` is a string to MySQL), replaced by [`PLACEHOLDER`].
    pub(super) fn redacted(&self, numbers: bool) -> String {
        let mut out = String::with_capacity(self.text.len());
        let mut at = 0;
        let literal = |t: &&Token| t.kind == Kind::Str || (numbers && t.kind == Kind::Num);
        for t in self.list.iter().filter(literal) {
            out.push_str(self.text.get(at..t.span.start).unwrap_or(""));
            out.push_str(PLACEHOLDER);
            at = t.span.end;
        }
        out.push_str(self.text.get(at..).unwrap_or(""));
        out
    }

    /// Whether a word names a credential (`IDENTIFIED`, `PASSWORD`,
    /// `MASTER_PASSWORD`…): the statement's literals may hold a secret.
    pub(super) fn mentions_secret(&self) -> bool {
        self.list.iter().enumerate().any(|(i, t)| {
            t.kind == Kind::Word && {
                let w = self.text_of(i).to_ascii_uppercase();
                w == "IDENTIFIED" || w.contains("PASSWORD")
            }
        })
    }

    /// The text from token `i` on (empty past the end).
    pub(super) fn rest(&self, i: usize) -> &'a str {
        self.list
            .get(i)
            .and_then(|t| self.text.get(t.span.start..))
            .unwrap_or("")
    }
}

fn chain(levels: &mut [usize], chained: &mut usize) {
    if let Some(last) = levels.last_mut() {
        *last += 1;
        *chained += 1;
    }
}

/// A literal's content as the server reads it: backslash escapes (the
/// lexer writes only `\\` and `\'`, but any is read as MySQL would) and a
/// doubled quote.
pub(super) fn unescape(raw: &str, quote: char) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('0') => out.push('\0'),
                Some('b') => out.push('\u{8}'),
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('t') => out.push('\t'),
                Some('Z') => out.push('\u{1a}'),
                // LIKE's wildcards keep their backslash.
                Some(w @ ('%' | '_')) => {
                    out.push('\\');
                    out.push(w);
                }
                Some(other) => out.push(other),
                None => out.push('\\'),
            },
            c if c == quote && chars.peek() == Some(&quote) => {
                chars.next();
                out.push(quote);
            }
            c => out.push(c),
        }
    }
    out
}
