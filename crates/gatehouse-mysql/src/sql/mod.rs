//! MySQL statement analysis that fails closed: a MySQL-faithful lexer
//! ([`lexer`]) first turns the text into the statement the server will
//! actually run (executable comments expanded as the server's version
//! would, ordinary comments gone, string literals and quoted identifiers
//! in one canonical form), then a parser ([`analyze`], on sqlparser's MySQL
//! dialect) turns that into the same actions, tables and flags as a
//! PostgreSQL statement, so the same Cedar policies apply to both.

pub(crate) mod analyze;
pub(crate) mod lexer;

use gatehouse_sql::StatementAnalysis;

/// What the lexer must know about the server and the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dialect {
    /// The server's version as executable comments compare it:
    /// `major * 10000 + minor * 100 + patch` (8.0.40 → 80040, 10.11.9 → 101109).
    pub version: u32,
    /// The server is MariaDB (it runs `/*M! … */` and six-digit `/*!` versions).
    pub mariadb: bool,
    /// `sql_mode` holds `ANSI_QUOTES`: `"…"` quotes an identifier, not a string.
    pub ansi_quotes: bool,
    /// `sql_mode` holds `NO_BACKSLASH_ESCAPES`: a backslash is an ordinary character in strings.
    pub no_backslash_escapes: bool,
}

/// A change of `sql_mode` a statement makes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SqlModeChange {
    /// Set to this literal value (as written, e.g. `ANSI_QUOTES,STRICT_TRANS_TABLES`).
    Literal(String),
    /// Back to the server's default (`SET sql_mode = DEFAULT`).
    Default,
    /// Anything the gateway cannot know before it runs (an expression, a variable).
    Unknown,
}

/// One analysed MySQL statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MysqlStatement {
    /// What it does, in the protocol-neutral form policies read. Unqualified
    /// tables have `schema: None` (they mean the session's current database).
    pub analysis: StatementAnalysis,
    /// `USE db`: the database it makes current.
    pub uses_database: Option<String>,
    /// A change of the session's `sql_mode` (`SET [SESSION] sql_mode = …`,
    /// `SET @@sql_mode = …`, `SET @@session.sql_mode = …`).
    pub sql_mode: Option<SqlModeChange>,
    /// How many `?` placeholders it holds (a prepared statement's parameters).
    pub placeholders: usize,
}

/// Whether a canonical statement reads the last statement's diagnostics
/// (`SHOW WARNINGS`, `SHOW ERRORS`, `SHOW COUNT(*) …`, `GET DIAGNOSTICS`),
/// which may quote values of the tables it read.
pub(crate) fn is_diagnostics(canonical: &str) -> bool {
    let mut words = canonical
        .split(|c: char| c.is_whitespace() || c == '(' || c == ';')
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_uppercase);
    matches!(
        (words.next().as_deref(), words.next().as_deref()),
        (Some("SHOW"), Some("WARNINGS" | "ERRORS" | "COUNT"))
            | (Some("GET"), Some("DIAGNOSTICS" | "CURRENT" | "STACKED"))
    )
}

#[cfg(test)]
mod tests {
    use super::is_diagnostics;

    #[test]
    fn diagnostics_statements_are_recognised_in_any_spelling() {
        assert!(is_diagnostics("SHOW WARNINGS"));
        assert!(is_diagnostics("show   errors LIMIT 1"));
        assert!(is_diagnostics("SHOW COUNT(*) WARNINGS"));
        assert!(is_diagnostics(
            "GET DIAGNOSTICS CONDITION 1 @m = MESSAGE_TEXT"
        ));
        assert!(!is_diagnostics("SHOW TABLES"));
        assert!(!is_diagnostics("SELECT 1"));
    }
}
