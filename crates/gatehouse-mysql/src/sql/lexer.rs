//! A MySQL/MariaDB-faithful lexer: it turns a statement's text into the
//! statement the server will actually run, in a canonical form that
//! sqlparser's MySQL dialect reads the way the server does.
//!
//! sqlparser does not lex like the server. It skips `/*! … */` executable
//! comments, which the server runs; it reads `1--1` as `1` and a comment,
//! which the server reads as `1 - -1`; and its string escapes differ (`\a`,
//! `\f`) from the server's, which also change with `NO_BACKSLASH_ESCAPES`
//! and `ANSI_QUOTES`. Attackers hide statements in exactly these gaps, so
//! the gateway lexes first, as the server would, and hands the parser a text
//! without comments, with every string literal in one escaping and every
//! quoted identifier in backticks. Whatever the lexer cannot read exactly as
//! the server would is an error, and the statement is refused.
//!
//! The work is linear in the text and nothing recurses: a comment inside an
//! executable comment is refused, so nesting never goes past one level.

use super::Dialect;

/// Why a text could not be lexed; the statement is refused with this message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LexError {
    /// A `'…'` or `"…"` string (or `X'…'`, `B'…'`) has no closing quote.
    #[error("unterminated string literal starting at byte {0}")]
    UnterminatedString(usize),
    /// A `` `…` `` (or, under ANSI_QUOTES, `"…"`) identifier has no closing quote.
    #[error("unterminated quoted identifier starting at byte {0}")]
    UnterminatedIdentifier(usize),
    /// A `/* … */` comment has no `*/`.
    #[error("unterminated comment starting at byte {0}")]
    UnterminatedComment(usize),
    /// A `/*! … */` comment that the server runs has no `*/`.
    #[error("unterminated executable comment starting at byte {0}")]
    UnterminatedExecutableComment(usize),
    /// A `/*` inside an executable comment: MySQL and MariaDB nest these
    /// differently, so the gateway cannot know where the comment ends.
    #[error("comment inside an executable comment at byte {0} (servers differ on where it ends)")]
    NestedComment(usize),
    /// The digits after `/*!` or `/*M!` are not a version this server reads
    /// one way only (five digits; six on MariaDB, or on MySQL 8.1+ before
    /// whitespace).
    #[error("malformed executable comment version at byte {0}")]
    MalformedVersion(usize),
    /// `/*!99997`: Galera (wsrep) servers run it whatever their version.
    #[error("executable comment version 99997 at byte {0} (run by Galera servers regardless of version)")]
    WsrepVersion(usize),
    /// A comment whose end the server and the gateway could see in
    /// different places: a line comment hiding `*/` inside an executable
    /// comment, or an optimizer hint with `*/`, a backslash or an open quote
    /// inside a quoted name.
    #[error("ambiguous comment at byte {0} (`*/` hidden where servers may not look for it)")]
    AmbiguousComment(usize),
    /// A NUL byte outside a string literal.
    #[error("NUL byte outside a string literal at byte {0}")]
    NulByte(usize),
    /// `X'…'` with a non-hex digit or an odd number of digits.
    #[error("malformed hexadecimal literal at byte {0}")]
    MalformedHexLiteral(usize),
    /// `B'…'` with a digit other than 0 or 1.
    #[error("malformed bit literal at byte {0}")]
    MalformedBitLiteral(usize),
    /// `$tag$`: newer MySQL servers read dollar-quoted text there (a word
    /// with two `$` is refused).
    #[error("dollar-quoted text at byte {0} is not supported")]
    DollarQuote(usize),
    /// `_name` before a literal where `name` is not a character set: the
    /// server reads a column named `_name`, the parser an introducer.
    #[error("`_…` word at byte {0} before a literal is not a known character set")]
    UnknownIntroducer(usize),
}

/// The statement as the server will run it, in canonical form.
pub(crate) fn canonical(sql: &str, dialect: &Dialect) -> Result<String, LexError> {
    Lexer {
        text: sql,
        src: sql.as_bytes(),
        pos: 0,
        dialect,
        out: String::with_capacity(sql.len() + 16),
        exec_start: None,
        open_literal: None,
        unknown_introducer: None,
    }
    .run()
}

/// Character sets the servers accept as `_name` introducers. gb18030 is
/// MySQL's only; MariaDB reads `_gb18030` as a column name.
const CHARSETS: &[&str] = &[
    "armscii8", "ascii", "big5", "binary", "cp1250", "cp1251", "cp1256", "cp1257", "cp850",
    "cp852", "cp866", "cp932", "dec8", "eucjpms", "euckr", "gb18030", "gb2312", "gbk", "geostd8",
    "greek", "hebrew", "hp8", "keybcs2", "koi8r", "koi8u", "latin1", "latin2", "latin5", "latin7",
    "macce", "macroman", "sjis", "swe7", "tis620", "ucs2", "ujis", "utf16", "utf16le", "utf32",
    "utf8", "utf8mb3", "utf8mb4",
];

/// Bytes of an unquoted identifier, keyword or number: MySQL takes every
/// non-ASCII character as an identifier character, and so does sqlparser.
fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// MySQL's whitespace (`my_isspace`): space, tab, LF, VT, FF, CR.
fn is_space(b: u8) -> bool {
    b == b' ' || (b'\t'..=b'\r').contains(&b)
}

/// What makes `--` a comment: whitespace, a control character or the end.
fn ends_dashes(next: Option<u8>) -> bool {
    next.is_none_or(|b| b <= b' ' || b == 0x7f)
}

/// Writes `value` as a literal's content: sqlparser's MySQL dialect decodes
/// backslash escapes, so only `\` and `'` are escaped. A `\%` or `\_` that
/// the server kept comes out `\\%` / `\\_`, which decodes back to it.
fn push_escaped(out: &mut String, value: &str) {
    for ch in value.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            c => out.push(c),
        }
    }
}

struct Lexer<'a> {
    text: &'a str,
    src: &'a [u8],
    pos: usize,
    dialect: &'a Dialect,
    out: String,
    /// Where the executable comment being run began.
    exec_start: Option<usize>,
    /// Output length just past the last string literal's closing quote, while
    /// only whitespace and comments followed it: MySQL concatenates the next
    /// plain literal onto it.
    open_literal: Option<usize>,
    /// Where an `_name` word that is not a character set began, while only
    /// whitespace and comments followed it.
    unknown_introducer: Option<usize>,
}

impl Lexer<'_> {
    fn run(mut self) -> Result<String, LexError> {
        while let Some(&b) = self.src.get(self.pos) {
            let at = self.pos;
            match b {
                0 => return Err(LexError::NulByte(at)),
                b'#' => self.line_comment()?,
                b'-' if self.peek(1) == Some(b'-') && ends_dashes(self.peek(2)) => {
                    self.line_comment()?
                }
                b'/' if self.peek(1) == Some(b'*') => self.block_comment()?,
                b'*' if self.exec_start.is_some() && self.peek(1) == Some(b'/') => {
                    self.exec_start = None;
                    self.pos += 2;
                    self.out.push(' ');
                }
                b'\'' => self.string(at, "")?,
                b'"' if !self.dialect.ansi_quotes => self.string(at, "")?,
                b'"' | b'`' => self.quoted_identifier()?,
                b if is_ident_byte(b) => self.word()?,
                b if is_space(b) => {
                    self.out.push(char::from(b));
                    self.pos += 1;
                }
                _ => {
                    // Anything else is ASCII punctuation. Two minus signs in a
                    // row would read as a comment to sqlparser: keep them apart.
                    if b == b'-' && self.out.ends_with('-') {
                        self.out.push(' ');
                    }
                    self.out.push(char::from(b));
                    self.pos += 1;
                    self.end_token();
                }
            }
        }
        match self.exec_start {
            Some(at) => Err(LexError::UnterminatedExecutableComment(at)),
            None => Ok(self.out),
        }
    }

    fn peek(&self, n: usize) -> Option<u8> {
        self.src.get(self.pos + n).copied()
    }

    /// A token other than a string literal was written.
    fn end_token(&mut self) {
        self.open_literal = None;
        self.unknown_introducer = None;
    }

    /// Keeps a quoted token from fusing with the token before it: `b"x"` is
    /// a word and a string to MySQL but a byte string to sqlparser, `@""''`
    /// two strings to MySQL but one to sqlparser once both are `'…'`, and
    /// sqlparser glues `@@` to whatever character follows it.
    fn separate(&mut self) {
        let fuses = self.out.ends_with("@@")
            || self
                .out
                .as_bytes()
                .last()
                .is_some_and(|&b| is_ident_byte(b) || b == b'\'' || b == b'`');
        if fuses {
            self.out.push(' ');
        }
    }

    /// `#` or `-- ` up to the end of the line. Inside an executable comment
    /// the servers skip a `*/` on that line; the gateway refuses to guess.
    fn line_comment(&mut self) -> Result<(), LexError> {
        let at = self.pos;
        let end = self.src[at..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(self.src.len(), |n| at + n);
        let body = &self.src[at..end];
        if let Some(n) = body.iter().position(|&b| b == 0) {
            return Err(LexError::NulByte(at + n));
        }
        if self.exec_start.is_some() && body.windows(2).any(|w| w == b"*/") {
            return Err(LexError::AmbiguousComment(at));
        }
        self.pos = end;
        self.out.push(' ');
        Ok(())
    }

    /// `/* … */`, `/*+ … */`, `/*! … */` and `/*M! … */`.
    fn block_comment(&mut self) -> Result<(), LexError> {
        let at = self.pos;
        if self.exec_start.is_some() {
            return Err(LexError::NestedComment(at));
        }
        let marker = &self.src[at + 2..];
        let mariadb_marker = marker.starts_with(b"M!");
        if marker.first() == Some(&b'!') || (mariadb_marker && self.dialect.mariadb) {
            let digits_at = at + if mariadb_marker { 4 } else { 3 };
            let version = self.version(at, digits_at)?;
            let runs = match version {
                None => true,
                Some((v, _)) => self.runs(at, v, mariadb_marker)?,
            };
            if runs {
                self.exec_start = Some(at);
                self.pos = digits_at + version.map_or(0, |(_, len)| len);
                self.out.push(' ');
                return Ok(());
            }
            // Not run: the servers skip to the first `*/`, quotes or not,
            // and let one nested comment through; the gateway refuses those.
            return self.skip_comment(at, digits_at, true);
        }
        if marker.first() == Some(&b'+') {
            self.check_hint(at)?;
        }
        // On MySQL `/*M!` is an ordinary comment.
        self.skip_comment(at, at + 2, false)
    }

    /// The version after `/*!` or `/*M!` and how many digits it took.
    fn version(&self, at: usize, from: usize) -> Result<Option<(u32, usize)>, LexError> {
        let digits = self.src[from..]
            .iter()
            .take(7)
            .take_while(|b| b.is_ascii_digit())
            .count();
        let six_ok = self.dialect.mariadb
            || (self.dialect.version >= 80_100
                && self.src.get(from + 6).is_some_and(|&b| is_space(b)));
        let len = match digits {
            0 => return Ok(None),
            5 => 5,
            // MySQL 8.0 reads five digits and runs the sixth; 8.1 reads six
            // only before whitespace; MariaDB always reads six.
            6 if six_ok => 6,
            _ => return Err(LexError::MalformedVersion(at)),
        };
        let version = self.src[from..from + len]
            .iter()
            .fold(0, |v, &b| v * 10 + u32::from(b - b'0'));
        Ok(Some((version, len)))
    }

    /// Whether the server runs an executable comment of this version.
    fn runs(&self, at: usize, version: u32, mariadb_marker: bool) -> Result<bool, LexError> {
        if version == 99_997 && !mariadb_marker {
            return Err(LexError::WsrepVersion(at));
        }
        if version > self.dialect.version {
            return Ok(false);
        }
        // MariaDB skips `/*!` comments for MySQL 5.7+ versions (50700–99999),
        // syntax it may not have; `/*M!` ones it runs.
        Ok(!(self.dialect.mariadb && !mariadb_marker && (50_700..=99_999).contains(&version)))
    }

    /// Skips a comment from `from` to its first `*/`.
    fn skip_comment(
        &mut self,
        at: usize,
        from: usize,
        refuse_nested: bool,
    ) -> Result<(), LexError> {
        let mut i = from;
        loop {
            match self.src.get(i..i + 2) {
                None => return Err(LexError::UnterminatedComment(at)),
                Some(b"*/") => break,
                Some(b"/*") if refuse_nested => return Err(LexError::NestedComment(i)),
                Some([0, _]) => return Err(LexError::NulByte(i)),
                _ => i += 1,
            }
        }
        self.pos = i + 2;
        self.out.push(' ');
        Ok(())
    }

    /// MySQL reads an optimizer hint `/*+ … */` with its own scanner, which
    /// skips quoted names: refuse a hint that scanner could end elsewhere
    /// than at the first `*/`.
    fn check_hint(&self, at: usize) -> Result<(), LexError> {
        let mut quote = None;
        for i in at + 3..self.src.len() {
            let b = self.src[i];
            let closes = b == b'*' && self.src.get(i + 1) == Some(&b'/');
            match quote {
                None if closes => return Ok(()),
                None if matches!(b, b'\'' | b'"' | b'`') => quote = Some(b),
                Some(q) if b == q => quote = None,
                Some(_) if closes || b == b'\\' => return Err(LexError::AmbiguousComment(at)),
                _ => {}
            }
        }
        // No end: skip_comment reports it.
        Ok(())
    }

    /// A `'…'` or `"…"` string starting at `self.pos`; `at` is where its
    /// `prefix` (`N`, `_charset`, or nothing) began.
    fn string(&mut self, at: usize, prefix: &str) -> Result<(), LexError> {
        let quote = self.src[self.pos];
        let escapes = !self.dialect.no_backslash_escapes;
        let text = self.text;
        let mut value = String::new();
        let mut i = self.pos + 1;
        loop {
            let Some(j) = self.src[i..]
                .iter()
                .position(|&b| b == quote || (escapes && b == b'\\'))
                .map(|n| i + n)
            else {
                return Err(LexError::UnterminatedString(at));
            };
            value.push_str(&text[i..j]);
            if self.src[j] == quote {
                if self.src.get(j + 1) == Some(&quote) {
                    value.push(char::from(quote));
                    i = j + 2;
                    continue;
                }
                i = j + 1;
                break;
            }
            let Some(escaped) = text[j + 1..].chars().next() else {
                return Err(LexError::UnterminatedString(at));
            };
            match escaped {
                '0' => value.push('\0'),
                'b' => value.push('\u{8}'),
                'n' => value.push('\n'),
                'r' => value.push('\r'),
                't' => value.push('\t'),
                'Z' => value.push('\u{1a}'),
                // Kept with their backslash, for LIKE.
                '%' | '_' => {
                    value.push('\\');
                    value.push(escaped);
                }
                c => value.push(c),
            }
            i = j + 1 + escaped.len_utf8();
        }
        self.pos = i;
        self.emit_literal(prefix, &value)
    }

    fn emit_literal(&mut self, prefix: &str, value: &str) -> Result<(), LexError> {
        if prefix.is_empty() {
            if let Some(word_at) = self.unknown_introducer {
                return Err(LexError::UnknownIntroducer(word_at));
            }
            if let Some(end) = self.open_literal {
                // Reopen the previous literal, dropping its closing quote and
                // the whitespace after it.
                self.out.truncate(end - 1);
                push_escaped(&mut self.out, value);
                self.out.push('\'');
                self.open_literal = Some(self.out.len());
                return Ok(());
            }
        }
        // A literal right after `@` names a variable or host (`@'v'`,
        // `'u'@'h'`): MySQL does not concatenate onto it.
        let names = self.out.bytes().rev().find(|&b| !is_space(b)) == Some(b'@');
        self.separate();
        self.out.push_str(prefix);
        self.out.push('\'');
        push_escaped(&mut self.out, value);
        self.out.push('\'');
        self.end_token();
        if !names {
            self.open_literal = Some(self.out.len());
        }
        Ok(())
    }

    /// A `` `…` `` identifier, or `"…"` under ANSI_QUOTES, written in backticks.
    fn quoted_identifier(&mut self) -> Result<(), LexError> {
        let at = self.pos;
        let quote = self.src[at];
        let text = self.text;
        self.separate();
        self.out.push('`');
        let mut i = at + 1;
        loop {
            let Some(j) = self.src[i..]
                .iter()
                .position(|&b| b == quote || b == 0)
                .map(|n| i + n)
            else {
                return Err(LexError::UnterminatedIdentifier(at));
            };
            if self.src[j] == 0 {
                return Err(LexError::NulByte(j));
            }
            self.out.push_str(&text[i..j].replace('`', "``"));
            if self.src.get(j + 1) != Some(&quote) {
                i = j + 1;
                break;
            }
            self.out.push_str(if quote == b'`' { "``" } else { "\"" });
            i = j + 2;
        }
        self.out.push('`');
        self.pos = i;
        self.end_token();
        Ok(())
    }

    /// `X'…'` or `B'…'` from `at`, written as it is.
    fn hex_or_bit(&mut self, at: usize, hex: bool) -> Result<(), LexError> {
        let open = self.pos;
        let Some(close) = self.src[open + 1..]
            .iter()
            .position(|&b| b == b'\'')
            .map(|n| open + 1 + n)
        else {
            return Err(LexError::UnterminatedString(at));
        };
        let digits = &self.src[open + 1..close];
        if hex {
            if !digits.iter().all(u8::is_ascii_hexdigit) || !digits.len().is_multiple_of(2) {
                return Err(LexError::MalformedHexLiteral(at));
            }
            // sqlparser takes `_name X'…'` as an introducer too.
            if let Some(word_at) = self.unknown_introducer {
                return Err(LexError::UnknownIntroducer(word_at));
            }
        } else if !digits.iter().all(|b| matches!(b, b'0' | b'1')) {
            return Err(LexError::MalformedBitLiteral(at));
        }
        let text = self.text;
        self.separate();
        self.out.push_str(&text[at..=close]);
        self.pos = close + 1;
        self.end_token();
        Ok(())
    }

    /// An unquoted word: keyword, identifier, number, or a literal's prefix.
    fn word(&mut self) -> Result<(), LexError> {
        let at = self.pos;
        let end = self.src[at..]
            .iter()
            .position(|&b| !is_ident_byte(b))
            .map_or(self.src.len(), |n| at + n);
        let text = self.text;
        let word = &text[at..end];
        self.pos = end;
        // `$tag$` opens dollar-quoted text on newer MySQL, also inside runs
        // like `1e5$a$` or `.5$a$` (a number, then `$a$`): refuse any second `$`.
        if word.bytes().filter(|&b| b == b'$').nth(1).is_some() {
            return Err(LexError::DollarQuote(at));
        }
        // Right after `.` or `@` MySQL reads a name, never a prefix.
        if at > 0 && matches!(self.src[at - 1], b'.' | b'@') {
            self.out.push_str(word);
            self.end_token();
            return Ok(());
        }
        let next = self.src.get(end).copied();
        if next == Some(b'\'') {
            match word {
                "x" | "X" => return self.hex_or_bit(at, true),
                "b" | "B" => return self.hex_or_bit(at, false),
                "n" | "N" => return self.string(at, word),
                _ => {}
            }
        }
        let introducer = word.starts_with('_');
        let charset = introducer && self.is_charset(&word[1..]);
        let quote_follows =
            next == Some(b'\'') || (next == Some(b'"') && !self.dialect.ansi_quotes);
        if charset && quote_follows {
            return self.string(at, word);
        }
        if let Some(digits) = word.strip_prefix("0x") {
            if let Some(word_at) = self.unknown_introducer {
                return Err(LexError::UnknownIntroducer(word_at));
            }
            // MySQL reads `0xZZ` as a name; sqlparser would read `0x` and a word.
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
                self.separate();
                self.out.push('`');
                self.out.push_str(word);
                self.out.push('`');
                self.end_token();
                return Ok(());
            }
        }
        self.separate();
        self.out.push_str(word);
        self.end_token();
        if introducer && !charset {
            self.unknown_introducer = Some(at);
        }
        Ok(())
    }

    fn is_charset(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        CHARSETS.contains(&name.as_str()) && !(self.dialect.mariadb && name == "gb18030")
    }
}

#[cfg(test)]
mod tests;
