//! Column rules: mask a column whatever its content.

use crate::strategy::Strategy;
use crate::MaskError;

/// Which columns a rule covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnTarget {
    /// `schema.table.column`, or `table.column` in any schema. Matched against
    /// the table column a result column comes from.
    Exact {
        /// Schema; `None` matches any.
        schema: Option<String>,
        /// Table (or view).
        table: String,
        /// Column.
        column: String,
    },
    /// A column name pattern with `*` and `?` (`*ssn*`), matched against the
    /// source column's name and the result column's label.
    Pattern(String),
    /// A JSON path (`$..ssn`): the values it covers in a JSON document (an
    /// HTTP body, a tool result). Never matches a SQL result column.
    JsonPath(crate::JsonPath),
}

impl ColumnTarget {
    /// Parses `schema.table.column` or `table.column` (identifiers are
    /// compared case-insensitively).
    pub fn exact(spec: &str) -> Result<Self, MaskError> {
        let parts: Vec<&str> = spec.split('.').collect();
        let bad = || MaskError::Column(spec.to_string());
        if parts.iter().any(|p| p.is_empty() || p.contains(['*', '?'])) {
            return Err(bad());
        }
        let low = |s: &str| s.to_ascii_lowercase();
        match parts[..] {
            [t, c] => Ok(ColumnTarget::Exact {
                schema: None,
                table: low(t),
                column: low(c),
            }),
            [s, t, c] => Ok(ColumnTarget::Exact {
                schema: Some(low(s)),
                table: low(t),
                column: low(c),
            }),
            _ => Err(bad()),
        }
    }

    /// A name pattern.
    pub fn pattern(p: &str) -> Result<Self, MaskError> {
        if p.is_empty() || p.contains('.') {
            return Err(MaskError::ColumnPattern(p.to_string()));
        }
        Ok(ColumnTarget::Pattern(p.to_ascii_lowercase()))
    }

    /// The column name this rule would match in a SQL text, for the check
    /// that masked columns are only selected directly.
    pub fn matches_name(&self, name: &str) -> bool {
        match self {
            ColumnTarget::Exact { column, .. } => column.eq_ignore_ascii_case(name),
            ColumnTarget::Pattern(p) => glob(p.as_bytes(), name.to_ascii_lowercase().as_bytes()),
            ColumnTarget::JsonPath(_) => false,
        }
    }

    fn matches(&self, source: Option<&SourceColumn<'_>>, label: &str) -> bool {
        match self {
            ColumnTarget::Exact {
                schema,
                table,
                column,
            } => source.is_some_and(|s| {
                s.column.eq_ignore_ascii_case(column)
                    && s.table.eq_ignore_ascii_case(table)
                    && schema
                        .as_deref()
                        .is_none_or(|x| s.schema.eq_ignore_ascii_case(x))
            }),
            ColumnTarget::Pattern(_) => {
                self.matches_name(label) || source.is_some_and(|s| self.matches_name(s.column))
            }
            ColumnTarget::JsonPath(_) => false,
        }
    }
}

/// A table column a result column comes from.
#[derive(Debug, Clone, Copy)]
pub struct SourceColumn<'a> {
    /// Schema.
    pub schema: &'a str,
    /// Table or view.
    pub table: &'a str,
    /// Column.
    pub column: &'a str,
}

/// A configured column rule.
#[derive(Debug, Clone)]
pub struct ColumnRule {
    /// What it covers.
    pub target: ColumnTarget,
    /// How values are masked.
    pub strategy: Strategy,
    /// Name in records (the rule as written: `public.customers.card`, `*ssn*`).
    pub label: String,
}

/// The first rule covering a result column, by index.
pub(crate) fn find(
    rules: &[ColumnRule],
    source: Option<&SourceColumn<'_>>,
    label: &str,
) -> Option<usize> {
    rules.iter().position(|r| r.target.matches(source, label))
}

/// Whether `name` matches the pattern `pattern` (`*` any run, `?` one
/// character), case-insensitively.
pub fn name_matches(pattern: &str, name: &str) -> bool {
    glob(
        pattern.to_ascii_lowercase().as_bytes(),
        name.to_ascii_lowercase().as_bytes(),
    )
}

/// `*` matches any run, `?` one byte; both sides already lower case.
fn glob(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob(b"*ssn*", b"customer_ssn"));
        assert!(glob(b"*ssn*", b"ssn"));
        assert!(glob(b"email", b"email"));
        assert!(!glob(b"email", b"emails"));
        assert!(glob(b"e?ail", b"email"));
        assert!(!glob(b"*ssn", b"ssn_hash"));
    }

    #[test]
    fn targets() {
        let t = ColumnTarget::exact("Public.Customers.Card").unwrap();
        let src = SourceColumn {
            schema: "public",
            table: "customers",
            column: "card",
        };
        assert!(t.matches(Some(&src), "x"));
        assert!(!t.matches(None, "card"));
        let any_schema = ColumnTarget::exact("customers.card").unwrap();
        assert!(any_schema.matches(
            Some(&SourceColumn {
                schema: "crm",
                ..src
            }),
            "x"
        ));
        let p = ColumnTarget::pattern("*SSN*").unwrap();
        assert!(p.matches(None, "national_ssn"));
        assert!(p.matches(
            Some(&SourceColumn {
                column: "ssn",
                ..src
            }),
            "alias"
        ));
        for bad in ["card", "a..b", "a.b.c.d", "*.card"] {
            assert!(ColumnTarget::exact(bad).is_err(), "{bad}");
        }
        assert!(ColumnTarget::pattern("a.b").is_err());
    }
}
