//! Secrets in statement texts: a role's password, a user mapping's options,
//! a subscription's or dblink's connection string. The analysis finds them in
//! the parse tree (so no quoting, escaping or comment hides them) and records
//! keep the statement only with its literals replaced.

/// What a record keeps of a text that could not be redacted.
const WITHHELD: &str = "<statement withheld: it may hold a secret>";
/// What stands in a record for each literal of a statement that holds a
/// secret (the form the `password` detector writes, so records read alike).
const PLACEHOLDER: &str = "'[masked:password]'";

/// `sql` with every literal replaced by [`PLACEHOLDER`]: libpg_query's
/// normalisation finds the literals exactly as the server reads them (it
/// writes `$n` in their place, which are then replaced).
pub(crate) fn redacted(sql: &str) -> String {
    match pg_query::normalize(sql) {
        // Nothing replaced: the normaliser does not reach every statement's
        // literals (a foreign server's options), so the text is withheld.
        Ok(normalized) if normalized == sql => WITHHELD.to_string(),
        Ok(normalized) => placeholders(&normalized),
        Err(_) => WITHHELD.to_string(),
    }
}

/// Whether a text mentions a password (case-insensitive): for code bodies
/// (`DO`, `CREATE FUNCTION`), whose statements run later out of sight.
pub(crate) fn mentions_password(sql: &str) -> bool {
    sql.as_bytes()
        .windows(8)
        .any(|w| w.eq_ignore_ascii_case(b"password"))
}

/// `$n` parameter markers (not a `$` inside a name such as `a$1`) replaced.
fn placeholders(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 32);
    let mut chars = s.char_indices().peekable();
    let mut prev: Option<char> = None;
    while let Some((_, c)) = chars.next() {
        let in_name = prev.is_some_and(|p| p.is_alphanumeric() || p == '_' || p == '$');
        if c == '$' && !in_name && chars.peek().is_some_and(|(_, d)| d.is_ascii_digit()) {
            while chars.peek().is_some_and(|(_, d)| d.is_ascii_digit()) {
                chars.next();
            }
            out.push_str(PLACEHOLDER);
            prev = Some('\'');
            continue;
        }
        out.push(c);
        prev = Some(c);
    }
    out
}

/// For a text the gateway could not analyze: the form a record may keep.
/// Without a parse tree the gateway cannot find a password by its place, so
/// any text that mentions one is withheld whole.
pub fn redact_secrets(sql: &str) -> Option<String> {
    mentions_password(sql).then(|| redacted(sql))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_literal_of_a_secret_statement_is_replaced_however_written() {
        for (sql, want) in [
            (
                "ALTER ROLE x PASSWORD $$sekrit$$",
                "ALTER ROLE x PASSWORD '[masked:password]'",
            ),
            (
                "alter role x with /* c */ password U&'s\\0065krit'",
                "alter role x with /* c */ password '[masked:password]'",
            ),
            (
                "CREATE ROLE a$1 PASSWORD E'sek\\x72it' VALID UNTIL '2030-01-01'",
                "CREATE ROLE a$1 PASSWORD '[masked:password]' VALID UNTIL '[masked:password]'",
            ),
        ] {
            assert_eq!(redacted(sql), want);
        }
        assert_eq!(
            redact_secrets("ALTER ROLE x PASSWORD 'sekrit' nonsense").as_deref(),
            Some(WITHHELD)
        );
        assert_eq!(redact_secrets("SELECT 1"), None);
        assert_eq!(
            redacted("CREATE SERVER s FOREIGN DATA WRAPPER w OPTIONS (password 'x')"),
            WITHHELD,
            "the normaliser leaves a server's options as they are"
        );
    }
}
