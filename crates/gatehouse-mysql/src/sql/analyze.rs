//! MySQL and MariaDB statements into the same analysis as PostgreSQL ones
//! (gatehouse-sql's `StatementAnalysis`), so that one set of Cedar policies
//! decides both: `DELETE FROM orders WHERE id = 1` is a `delete` on `orders`
//! with a bounding WHERE whichever server it is sent to.
//!
//! The input is one statement as the lexer made it canonical (comments
//! gone, executable comments expanded, strings `'…'`, names `` `…` ``).
//! Most statements are parsed with sqlparser's MySQL dialect and mapped
//! variant by variant ([`statements`]); a few it cannot parse, or parses
//! too loosely, are read from their keywords ([`keywords`], [`objects`]) or
//! rewritten into a form it reads the same ([`rewrite`]). One walk of the
//! parsed tree ([`walk`]) finds every table read and function called.
//! Everything fails closed: a
//! statement kind nobody mapped is refused, never taken for a harmless one,
//! and so is anything the analysis cannot see into (`PREPARE … FROM
//! @variable`, `LOAD DATA LOCAL`, a multi-byte client character set).
//!
//! In MySQL a table's "schema" is its database: `shop.orders` is
//! `TableRef { schema: Some("shop"), name: "orders" }`, and an unqualified
//! name has no schema (the gate reads it in the session's database). Table
//! and database names are kept as written (case-sensitive on Linux);
//! function, column and prepared statement names, which the server reads
//! case-insensitively, are lower-cased.

mod bounds;
mod ddl;
mod dml;
mod functions;
mod keywords;
mod names;
mod objects;
mod rewrite;
mod scan;
mod set;
mod statements;
mod walk;

#[cfg(test)]
mod tests;

use super::{Dialect, MysqlStatement, SqlModeChange};
use gatehouse_sql::{
    Action, ActionKind, ColumnFlow, Flags, SettingChange, StatementAnalysis, TableRef,
};
use keywords::Route;
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::{Parser, ParserError};
use std::collections::{BTreeSet, HashSet};

/// How deeply sqlparser may recurse (its own default): subqueries and
/// parentheses nest at most this deep.
const RECURSION_LIMIT: usize = 50;
/// How deep [`scan::Tokens::nesting`] may estimate the tree: operator
/// chains are built without recursion but walked (and dropped) with it.
const MAX_NESTING: usize = 4_000;

/// Why a statement cannot be analysed. The gateway refuses it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AnalyzeError {
    /// The MySQL parser rejected it.
    #[error("the statement could not be parsed: {0}")]
    Parse(String),
    /// It parsed, but the gateway does not understand it well enough to let
    /// it through (the message says what and, where it can, what to do).
    #[error("{0}")]
    Unsupported(String),
    /// More than one statement in one text.
    #[error("the gateway runs one statement at a time: send each statement on its own")]
    MultipleStatements,
    /// No statement at all.
    #[error("the statement is empty")]
    Empty,
    /// The statement text a `PREPARE` names could not be read.
    #[error("the statement PREPARE names could not be read: {0}")]
    Nested(String),
    /// Nested too deeply to analyse.
    #[error("the statement nests too deeply to analyze; split it, or use IN (…) instead of long OR chains")]
    TooComplex,
}

/// Analyses one statement: `canonical` is the lexer's form of `original`,
/// the text the client sent (kept as the analysis's text unless it holds a
/// secret, when the canonical text is kept with every literal replaced:
/// the original may hide the password in a comment or an escape).
pub(crate) fn analyze(
    canonical: &str,
    original: &str,
    dialect: &Dialect,
) -> Result<MysqlStatement, AnalyzeError> {
    analyze_text(canonical, original, dialect, false)
}

/// [`analyze`], for a statement a `PREPARE` names when `nested`.
fn analyze_text(
    canonical: &str,
    original: &str,
    dialect: &Dialect,
    nested: bool,
) -> Result<MysqlStatement, AnalyzeError> {
    let tokens = scan::scan(canonical)?;
    if tokens.list.iter().all(|t| t.kind == scan::Kind::Punct(';')) {
        return Err(AnalyzeError::Empty);
    }
    if tokens.nesting() > MAX_NESTING {
        return Err(AnalyzeError::TooComplex);
    }
    let facts = match keywords::route(&tokens, dialect, nested)? {
        Route::Done(facts) => *facts,
        Route::Prepared(mut st) => {
            st.analysis.text = if st.analysis.secret {
                tokens.redacted(true)
            } else {
                original.to_string()
            };
            return Ok(*st);
        }
        Route::Parse { text, adjust } => {
            if tokens.second_statement() {
                return Err(AnalyzeError::MultipleStatements);
            }
            match parse_one(text.as_deref().unwrap_or(canonical), &tokens) {
                Ok(stmt) => statements::analyze_statement(&stmt, &tokens, &adjust)?,
                Err(AnalyzeError::Parse(_)) if adjust.grant_fallback => keywords::grant(&tokens)?,
                Err(e) => return Err(e),
            }
        }
    };
    let text = if facts.secret {
        tokens.redacted(true)
    } else {
        original.to_string()
    };
    Ok(facts.finish(text, tokens.placeholders()))
}

/// Parses exactly one statement.
fn parse_one(
    text: &str,
    tokens: &scan::Tokens<'_>,
) -> Result<sqlparser::ast::Statement, AnalyzeError> {
    let dialect = MySqlDialect {};
    let parsed = Parser::new(&dialect)
        .with_recursion_limit(RECURSION_LIMIT)
        .try_with_sql(text)
        .and_then(|mut p| p.parse_statements());
    let mut statements = match parsed {
        Ok(s) => s,
        Err(ParserError::RecursionLimitExceeded) => return Err(AnalyzeError::TooComplex),
        Err(ParserError::TokenizerError(m) | ParserError::ParserError(m)) => {
            // A parse error quotes the token it stopped at, which may be a
            // password: a statement naming one gets no quotes back.
            let m = if tokens.mentions_secret() {
                scan::scan(&m).map_or_else(|_| "near a literal".to_string(), |t| t.redacted(false))
            } else {
                m
            };
            return Err(AnalyzeError::Parse(m));
        }
    };
    match statements.len() {
        0 => Err(AnalyzeError::Empty),
        1 => Ok(statements.remove(0)),
        _ => Err(AnalyzeError::MultipleStatements),
    }
}

/// What a statement does, gathered while it is analysed.
struct Facts {
    /// The statement's own kind (the result is the most severe of it and
    /// its actions).
    kind: ActionKind,
    operation: String,
    actions: Vec<Action>,
    /// The actions as a set, so that adding one stays cheap.
    seen: HashSet<(ActionKind, Option<TableRef>, Option<bool>)>,
    functions: BTreeSet<String>,
    opaque: BTreeSet<String>,
    flags: Flags,
    executes: Option<String>,
    deallocates: Option<Option<String>>,
    columns: ColumnFlow,
    settings: Vec<SettingChange>,
    secret: bool,
    values_rows: Option<u64>,
    uses_database: Option<String>,
    sql_mode: Option<SqlModeChange>,
    /// Inside EXPLAIN without ANALYZE: nothing runs, every action is `explain`.
    explain_only: bool,
}

impl Facts {
    fn new(kind: ActionKind, operation: &str) -> Self {
        Facts {
            kind,
            operation: operation.to_string(),
            actions: Vec::new(),
            seen: HashSet::new(),
            functions: BTreeSet::new(),
            opaque: BTreeSet::new(),
            flags: Flags::default(),
            executes: None,
            deallocates: None,
            columns: ColumnFlow::default(),
            settings: Vec::new(),
            secret: false,
            values_rows: None,
            uses_database: None,
            sql_mode: None,
            explain_only: false,
        }
    }

    fn action(&mut self, kind: ActionKind, table: Option<TableRef>, has_where: Option<bool>) {
        let (kind, has_where) = if self.explain_only {
            (ActionKind::Explain, None)
        } else {
            (kind, has_where)
        };
        if self.seen.insert((kind, table.clone(), has_where)) {
            self.actions.push(Action {
                kind,
                table,
                has_where,
            });
        }
    }

    /// Takes in what a walk found: reads, calls, locks, column flow.
    fn absorb(&mut self, w: walk::Walk) {
        for t in w.reads {
            self.action(ActionKind::Select, Some(t), None);
        }
        self.functions.extend(w.functions);
        self.opaque.extend(w.opaque);
        self.flags.locks_rows |= w.locks_rows;
        let flow = w.flow;
        self.columns.relations.extend(flow.relations);
        self.columns.derived.extend(flow.derived);
        self.columns.projected.extend(flow.projected);
        self.columns.alias_columns.extend(flow.alias_columns);
    }

    /// The analysis, by gatehouse-sql's rules: an opaque call adds a
    /// `function` action, every statement is at least its own kind, and it
    /// counts as the most severe thing it does.
    fn finish(mut self, text: String, placeholders: usize) -> MysqlStatement {
        self.explain_only = false;
        if !self.opaque.is_empty() {
            self.action(ActionKind::Function, None, None);
        }
        let has_own_kind = self.actions.iter().any(|a| a.kind == self.kind);
        if self.actions.is_empty() || (!has_own_kind && self.kind != ActionKind::Select) {
            self.action(self.kind, None, None);
        }
        let kind = self
            .actions
            .iter()
            .map(|a| a.kind)
            .max()
            .unwrap_or(self.kind)
            .max(self.kind);
        let mut columns = self.columns;
        columns
            .derived
            .sort_by(|a, b| (&a.qualifier, &a.column).cmp(&(&b.qualifier, &b.column)));
        columns.derived.dedup();
        MysqlStatement {
            analysis: StatementAnalysis {
                text,
                kind,
                operation: self.operation,
                actions: self.actions,
                functions: self.functions.into_iter().collect(),
                opaque_functions: self.opaque.into_iter().collect(),
                flags: self.flags,
                prepares: None,
                executes: self.executes,
                deallocates: self.deallocates,
                columns,
                copy_out: None,
                settings: self.settings,
                secret: self.secret,
                attributes: Vec::new(),
                values_rows: self.values_rows,
            },
            uses_database: self.uses_database,
            sql_mode: self.sql_mode,
            placeholders,
        }
    }
}
