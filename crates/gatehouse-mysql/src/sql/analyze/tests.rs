//! Tests of the MySQL analysis, one file per area; statements go through
//! the real lexer first, as the gateway sends them.

mod bypass;
mod dml;
mod flow;
mod objects;
mod parity;
mod props;
mod session;

use super::{analyze, AnalyzeError};
use crate::sql::{lexer, Dialect, MysqlStatement};

/// A MySQL 8.0 server in its default modes.
pub(super) const MYSQL: Dialect = Dialect {
    version: 80040,
    mariadb: false,
    ansi_quotes: false,
    no_backslash_escapes: false,
};

/// Lexes and analyses `sql`.
pub(super) fn run(sql: &str) -> Result<MysqlStatement, AnalyzeError> {
    let canonical =
        lexer::canonical(sql, &MYSQL).map_err(|e| AnalyzeError::Nested(e.to_string()))?;
    analyze(&canonical, sql, &MYSQL)
}

/// The analysis of a statement that must be analysed.
pub(super) fn ok(sql: &str) -> MysqlStatement {
    run(sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The refusal of a statement that must be refused.
pub(super) fn refused(sql: &str) -> AnalyzeError {
    match run(sql) {
        Ok(st) => panic!("{sql} was not refused: {:?}", st.analysis),
        Err(e) => e,
    }
}

/// The actions as `kind table [where|no where]`, for readable assertions.
pub(super) fn actions(st: &MysqlStatement) -> Vec<String> {
    st.analysis
        .actions
        .iter()
        .map(|a| {
            let mut s = a.kind.as_str().to_string();
            if let Some(t) = &a.table {
                s.push(' ');
                if let Some(db) = &t.schema {
                    s.push_str(db);
                    s.push('.');
                }
                s.push_str(&t.name);
            }
            match a.has_where {
                Some(true) => s.push_str(" where"),
                Some(false) => s.push_str(" no where"),
                None => {}
            }
            s
        })
        .collect()
}

/// The kind's name.
pub(super) fn kind(st: &MysqlStatement) -> &'static str {
    st.analysis.kind.as_str()
}

/// Derived column uses as `q.c` or `c`.
pub(super) fn derived(st: &MysqlStatement) -> Vec<String> {
    st.analysis
        .columns
        .derived
        .iter()
        .map(|c| match &c.qualifier {
            Some(q) => format!("{q}.{}", c.column),
            None => c.column.clone(),
        })
        .collect()
}
