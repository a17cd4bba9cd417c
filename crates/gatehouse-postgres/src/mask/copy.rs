//! COPY TO STDOUT under column rules: the COPY's table and column list (from
//! the statement) are resolved through the catalog, so each field of a row
//! is known by its column; covered fields are decoded, masked by rule and
//! encoded again, other fields go through the detectors.

use super::{MaskFailure, PlanState, SessionMasking};
use crate::codec::write::{begin, finish};
use bytes::{BufMut, BytesMut};
use gatehouse_mask::{MaskTally, Masked, SourceColumn, TextKind};
use gatehouse_sql::{CopyFormat, CopyOut};

/// How a COPY's rows are written.
#[derive(Debug, Clone)]
struct Syntax {
    csv: bool,
    delimiter: u8,
    quote: u8,
    escape: u8,
    null: Vec<u8>,
}

/// How one COPY's rows are masked.
#[derive(Debug)]
pub(crate) struct CopyPlan {
    syntax: Syntax,
    /// The rule covering each field, by position.
    rules: Vec<Option<usize>>,
    /// Whether any field is covered (else rows go through the detectors whole).
    any_rule: bool,
    /// The next row is the header line (column names, not values).
    header: bool,
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

impl Syntax {
    fn of(copy: &CopyOut) -> Result<Self, String> {
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
                    "COPY with ENCODING {e:?} cannot be masked by column; leave ENCODING out (UTF-8)"
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

    /// The end of the field starting at `at` (exclusive), and whether it is a quoted CSV field.
    fn field_end(&self, row: &[u8], at: usize) -> Result<(usize, bool), MaskFailure> {
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
        Ok((i.min(row.len()), false))
    }

    /// Decodes a field's value into `out`.
    fn decode(&self, raw: &[u8], quoted: bool, out: &mut Vec<u8>) {
        out.clear();
        if self.csv {
            if !quoted {
                out.extend_from_slice(raw);
                return;
            }
            let inner = &raw[1..raw.len() - 1];
            let mut i = 0;
            while i < inner.len() {
                let b = inner[i];
                if (b == self.escape || b == self.quote) && i + 1 < inner.len() {
                    out.push(inner[i + 1]);
                    i += 2;
                } else {
                    out.push(b);
                    i += 1;
                }
            }
            return;
        }
        let mut i = 0;
        while i < raw.len() {
            let b = raw[i];
            if b == b'\\' && i + 1 < raw.len() {
                out.push(match raw[i + 1] {
                    b'b' => 8,
                    b'f' => 12,
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'v' => 11,
                    other => other,
                });
                i += 2;
            } else {
                out.push(b);
                i += 1;
            }
        }
    }

    /// Encodes a masked value as a field.
    fn encode(&self, value: &[u8], out: &mut Vec<u8>) {
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

fn malformed() -> MaskFailure {
    MaskFailure("a COPY row could not be split into its fields".into())
}

impl SessionMasking {
    /// The plan for a COPY of `fields` columns under column rules.
    pub(crate) fn copy_plan(&mut self, copy: &CopyOut, fields: usize) -> PlanState<CopyPlan> {
        if let Some(e) = self.catalog_error.take() {
            return PlanState::Failed(format!(
                "the COPY's table could not be looked up in the catalog: {e}"
            ));
        }
        let syntax = match Syntax::of(copy) {
            Ok(s) => s,
            Err(e) => return PlanState::Failed(e),
        };
        let Some(table) = &copy.table else {
            // COPY (query): the column guard let it through, so it reads no covered column.
            return PlanState::Ready(CopyPlan {
                syntax,
                rules: Vec::new(),
                any_rule: false,
                header: copy.header,
            });
        };
        self.refresh_tables();
        let info = match self.named.get(table) {
            None => {
                self.wanted.names.push(table.clone());
                return PlanState::Wait;
            }
            Some(Err(e)) => return PlanState::Failed(e.clone()),
            Some(Ok(oid)) => match self.tables.get(oid) {
                Some(info) => info.clone(),
                None => {
                    self.named.remove(table);
                    self.wanted.names.push(table.clone());
                    return PlanState::Wait;
                }
            },
        };
        let columns: Vec<&str> = if copy.columns.is_empty() {
            let stored: Vec<&str> = info
                .columns
                .iter()
                .filter(|(n, _)| !info.generated.contains(n))
                .map(|(_, c)| c.as_str())
                .collect();
            if stored.len() == fields {
                stored
            } else {
                // Servers that copy generated columns too.
                info.columns.iter().map(|(_, c)| c.as_str()).collect()
            }
        } else {
            let mut named = Vec::with_capacity(copy.columns.len());
            for c in &copy.columns {
                match info.columns.iter().find(|(_, n)| n == c) {
                    Some((_, n)) => named.push(n.as_str()),
                    None => {
                        return PlanState::Failed(format!(
                            "column {c:?} of {}.{} was not found in the catalog",
                            info.schema, info.name
                        ))
                    }
                }
            }
            named
        };
        if columns.len() != fields {
            return PlanState::Failed(format!(
                "the COPY sends {fields} columns, but {}.{} has {} to send",
                info.schema,
                info.name,
                columns.len()
            ));
        }
        let rules: Vec<Option<usize>> = columns
            .iter()
            .map(|column| {
                let source = SourceColumn {
                    schema: &info.schema,
                    table: &info.name,
                    column,
                };
                self.engine.rule_for(Some(&source), column)
            })
            .collect();
        PlanState::Ready(CopyPlan {
            syntax,
            any_rule: rules.iter().any(Option::is_some),
            rules,
            header: copy.header,
        })
    }

    /// Masks one COPY row by `plan`: covered fields by rule, the others by
    /// the detectors. `None`: nothing to mask.
    pub(crate) fn copy_row_by_plan(
        &mut self,
        plan: &mut CopyPlan,
        body: &[u8],
        tally: &mut MaskTally,
    ) -> Result<Option<BytesMut>, MaskFailure> {
        if std::mem::take(&mut plan.header) || !plan.any_rule {
            return Ok(self.copy_row(body, tally));
        }
        let syntax = &plan.syntax;
        self.value.clear();
        let mut at = 0;
        for (i, rule) in plan.rules.iter().enumerate() {
            if i > 0 {
                if body.get(at) != Some(&syntax.delimiter) {
                    return Err(malformed());
                }
                self.value.push(syntax.delimiter);
                at += 1;
            }
            let (end, quoted) = syntax.field_end(body, at)?;
            let raw = &body[at..end];
            at = end;
            let is_null = !quoted && raw == syntax.null.as_slice();
            match rule {
                Some(r) if !is_null => {
                    syntax.decode(raw, quoted, &mut self.decoded);
                    self.field.clear();
                    match self
                        .engine
                        .mask_by_rule(*r, &self.decoded, &mut self.field, tally)
                    {
                        Masked::Null => self.value.extend_from_slice(&syntax.null),
                        _ => syntax.encode(&self.field, &mut self.value),
                    }
                }
                _ => {
                    if is_null
                        || !self.engine.mask_inline(
                            raw,
                            TextKind::Plain,
                            &mut self.value,
                            &mut self.scratch,
                            tally,
                        )
                    {
                        self.value.extend_from_slice(raw);
                    }
                }
            }
        }
        // The row's end (a newline); anything else is a field count that does not match.
        match &body[at..] {
            b"\n" | b"\r\n" | b"" => self.value.extend_from_slice(&body[at..]),
            _ => return Err(malformed()),
        }
        let s = begin(&mut self.out, b'd');
        self.out.put_slice(&self.value);
        finish(&mut self.out, s);
        Ok(Some(self.out.split()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn syntax(csv: bool) -> Syntax {
        Syntax {
            csv,
            delimiter: if csv { b',' } else { b'\t' },
            quote: b'"',
            escape: b'"',
            null: if csv { Vec::new() } else { b"\\N".to_vec() },
        }
    }

    fn fields(s: &Syntax, row: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        let mut at = 0;
        loop {
            let (end, quoted) = s.field_end(row, at).unwrap();
            let mut v = Vec::new();
            s.decode(&row[at..end], quoted, &mut v);
            out.push(String::from_utf8(v).unwrap());
            if row.get(end) != Some(&s.delimiter) {
                break;
            }
            at = end + 1;
        }
        out
    }

    #[test]
    fn text_fields_round_trip() {
        let s = syntax(false);
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
    fn csv_fields_round_trip() {
        let s = syntax(true);
        assert_eq!(
            fields(&s, b"1,\"a,\"\"b\"\"\nc\",,plain\n"),
            vec!["1", "a,\"b\"\nc", "", "plain"]
        );
        let mut enc = Vec::new();
        s.encode(b"q\"x,", &mut enc);
        assert_eq!(enc, b"\"q\"\"x,\"");
        assert!(s.field_end(b"\"open", 0).is_err());
    }
}
