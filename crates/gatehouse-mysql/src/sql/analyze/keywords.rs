//! Routing by leading keywords, and the statements analysed from their
//! keywords alone.
//!
//! sqlparser's MySQL dialect cannot parse some statements MySQL runs
//! (`PREPARE … FROM`, `LOAD DATA`, `LOCK TABLE`, replication and plugin
//! administration) and reads some others loosely (`SET PASSWORD` as a
//! variable). Those whose keywords alone say what they do, and which hold
//! no query or expression the analysis would have to see, are analysed
//! here or in [`super::objects`] (stored programs, accounts); others are
//! spelled the way sqlparser reads them ([`super::rewrite`]). Everything
//! else goes to the parser as it is.

use super::scan::{Kind, Tokens};
use super::walk::Sink;
use super::{analyze_text, AnalyzeError, Dialect, Facts, MysqlStatement};
use super::{objects, rewrite};
use gatehouse_sql::{ActionKind, TableRef};

/// What to do with a statement.
pub(super) enum Route {
    /// Analysed from its keywords.
    Done(Box<Facts>),
    /// `PREPARE name FROM '…'`: the analysis of the statement it prepares.
    Prepared(Box<MysqlStatement>),
    /// Parse it: the canonical text, or this rewrite of it.
    Parse {
        text: Option<String>,
        adjust: Adjust,
    },
}

/// How a parsed statement's analysis differs from the plain one.
#[derive(Default)]
pub(super) struct Adjust {
    /// What the top-level query's values feed (`Output` when not given).
    pub(super) root: Option<Sink>,
    /// The operation to report.
    pub(super) operation: Option<&'static str>,
    /// `INTO OUTFILE`/`DUMPFILE` was taken out: the result goes to a file
    /// on the database server.
    pub(super) into_file: bool,
    /// The rewrite is a query; anything else parsed from it is refused.
    pub(super) query_only: bool,
    /// A GRANT or REVOKE the parser rejects is read from its keywords.
    pub(super) grant_fallback: bool,
}

pub(super) fn parse() -> Result<Route, AnalyzeError> {
    Ok(Route::Parse {
        text: None,
        adjust: Adjust::default(),
    })
}

pub(super) fn refuse<T>(message: &str) -> Result<T, AnalyzeError> {
    Err(AnalyzeError::Unsupported(message.to_string()))
}

/// Decides how `tokens` is analysed (`nested`: it is what a PREPARE names).
pub(super) fn route(
    tokens: &Tokens<'_>,
    dialect: &Dialect,
    nested: bool,
) -> Result<Route, AnalyzeError> {
    let first = tokens.upper(0).unwrap_or_default();
    let second = tokens.upper(1).unwrap_or_default();
    let prepared_statement = matches!(first.as_str(), "PREPARE" | "EXECUTE" | "DEALLOCATE")
        || (first == "DROP" && second == "PREPARE");
    if nested && prepared_statement {
        return refuse("a prepared statement cannot itself prepare, execute or deallocate one");
    }
    match first.as_str() {
        "PREPARE" => prepare(tokens, dialect),
        "DEALLOCATE" | "DROP" if second == "PREPARE" => {
            let name = tokens.part(2).filter(|_| single(tokens, 3));
            let Some(name) = name else {
                return refuse("DEALLOCATE PREPARE takes one statement name");
            };
            let mut f = Facts::new(ActionKind::Set, "deallocate");
            f.deallocates = Some(Some(name.to_lowercase()));
            Ok(Route::Done(Box::new(f)))
        }
        // DO evaluates expressions and discards them; values assigned to
        // variables on the way leave without origin.
        "DO" => rewrite::rewrite(tokens, "SELECT ", Some(Sink::Derived), "do"),
        "TABLE" => rewrite::rewrite(tokens, "SELECT * FROM ", None, "select"),
        "SELECT" | "WITH" => Ok(rewrite::query(tokens)),
        "" if tokens.punct(0, '(') => Ok(rewrite::query(tokens)),
        "UPDATE" | "DELETE" => Ok(rewrite::dml(tokens)),
        "LOAD" => load(tokens),
        "HANDLER" => refuse(
            "HANDLER reads tables row by row outside SQL and is not supported through the gateway",
        ),
        "BINLOG" => refuse("BINLOG replays changes the gateway cannot see and is not supported"),
        "XA" => done(tokens, ActionKind::Transaction, "xa"),
        "HELP" => done(tokens, ActionKind::Set, "help"),
        "LOCK" => lock(tokens),
        "UNLOCK" if second == "INSTANCE" => done(tokens, ActionKind::Admin, "unlock_instance"),
        "UNLOCK" => done(tokens, ActionKind::Other, "unlock"),
        "CREATE" | "ALTER" | "DROP" | "RENAME" => objects::object(tokens, &first),
        "SET" => rewrite::set(tokens),
        "GRANT" | "REVOKE" => Ok(Route::Parse {
            text: None,
            adjust: Adjust {
                grant_fallback: true,
                ..Adjust::default()
            },
        }),
        // sqlparser lacks `WITH CONSISTENT SNAPSHOT` (which mysqldump sends).
        "START" if second == "TRANSACTION" && transaction_modes(tokens) => {
            done(tokens, ActionKind::Transaction, "transaction")
        }
        "START" | "STOP"
            if matches!(second.as_str(), "SLAVE" | "REPLICA" | "GROUP_REPLICATION") =>
        {
            let op = format!("{}_replica", first.to_lowercase());
            admin(tokens, &op)
        }
        "CHANGE" => admin(tokens, "change_replication"),
        "PURGE" | "INSTALL" | "UNINSTALL" | "SHUTDOWN" | "RESTART" | "RESET" | "CLONE"
        | "CACHE" => admin(tokens, &first.to_lowercase()),
        "ANALYZE" if !table_list_follows(tokens) => {
            // MariaDB's ANALYZE runs its statement, as EXPLAIN ANALYZE does.
            rewrite::rewrite(tokens, "EXPLAIN ANALYZE ", None, "explain")
        }
        "OPTIMIZE" | "CHECK" | "REPAIR" | "CHECKSUM" | "ANALYZE" => table_admin(tokens, &first),
        _ => parse(),
    }
}

/// `START TRANSACTION` followed only by its modes.
fn transaction_modes(tokens: &Tokens<'_>) -> bool {
    const MODES: &[&str] = &["WITH", "CONSISTENT", "SNAPSHOT", "READ", "ONLY", "WRITE"];
    (2..tokens.len())
        .all(|i| tokens.is_any(i, MODES) || tokens.punct(i, ',') || tokens.punct(i, ';'))
}

/// Whether only `;` follow from `i` on.
pub(super) fn single(tokens: &Tokens<'_>, i: usize) -> bool {
    (i..tokens.len()).all(|j| tokens.punct(j, ';'))
}

pub(super) fn one_statement(tokens: &Tokens<'_>) -> Result<(), AnalyzeError> {
    if tokens.second_statement() {
        return Err(AnalyzeError::MultipleStatements);
    }
    Ok(())
}

/// A statement whose first keywords say all it does.
pub(super) fn done(tokens: &Tokens<'_>, kind: ActionKind, op: &str) -> Result<Route, AnalyzeError> {
    one_statement(tokens)?;
    Ok(Route::Done(Box::new(Facts::new(kind, op))))
}

/// Server administration; a credential anywhere makes it a secret
/// (`CHANGE REPLICATION SOURCE TO SOURCE_PASSWORD = '…'`).
fn admin(tokens: &Tokens<'_>, op: &str) -> Result<Route, AnalyzeError> {
    one_statement(tokens)?;
    let mut f = Facts::new(ActionKind::Admin, op);
    f.secret = tokens.mentions_secret();
    // A plugin or component is code loaded into the server.
    f.flags.opaque_code = matches!(op, "install");
    Ok(Route::Done(Box::new(f)))
}

/// `<keyword> [NO_WRITE_TO_BINLOG | LOCAL] TABLE[S]` at the start.
fn table_list_follows(tokens: &Tokens<'_>) -> bool {
    let i = if tokens.is_any(1, &["NO_WRITE_TO_BINLOG", "LOCAL"]) {
        2
    } else {
        1
    };
    tokens.is_any(i, &["TABLE", "TABLES"])
}

/// `OPTIMIZE|CHECK|REPAIR|CHECKSUM|ANALYZE TABLE t1, t2 [options]`:
/// administration of each table.
fn table_admin(tokens: &Tokens<'_>, first: &str) -> Result<Route, AnalyzeError> {
    one_statement(tokens)?;
    if !table_list_follows(tokens) {
        return refuse(&format!(
            "{first} without TABLE is not supported through the gateway"
        ));
    }
    let mut i = if tokens.is_any(1, &["NO_WRITE_TO_BINLOG", "LOCAL"]) {
        3
    } else {
        2
    };
    let mut f = Facts::new(ActionKind::Admin, &first.to_lowercase());
    loop {
        let Some((t, next)) = tokens.name(i) else {
            return refuse(&format!("{first} TABLE needs table names"));
        };
        f.action(ActionKind::Admin, Some(t), None);
        if !tokens.punct(next, ',') {
            break;
        }
        i = next + 1;
    }
    Ok(Route::Done(Box::new(f)))
}

/// `PREPARE name FROM '…'`: the statement in the string, lexed and analysed
/// as the one prepared.
fn prepare(tokens: &Tokens<'_>, dialect: &Dialect) -> Result<Route, AnalyzeError> {
    let Some(name) = tokens.part(1) else {
        return refuse("PREPARE needs a statement name");
    };
    if !tokens.is(2, "FROM") {
        return refuse("PREPARE … FROM '<statement>' is the form MySQL runs");
    }
    if tokens.punct(3, '@') {
        return refuse(
            "PREPARE … FROM @variable is refused: the gateway cannot see the statement a \
             variable holds; prepare from a string literal",
        );
    }
    let mut i = 3;
    let mut inner = String::new();
    while let Some(s) = tokens.string(i) {
        inner.push_str(&s);
        i += 1;
    }
    if i == 3 {
        return refuse("PREPARE … FROM needs the statement as a string literal");
    }
    if !single(tokens, i) {
        return if tokens.second_statement() {
            Err(AnalyzeError::MultipleStatements)
        } else {
            refuse("PREPARE … FROM needs the statement as one string literal")
        };
    }
    let canonical = super::super::lexer::canonical(&inner, dialect)
        .map_err(|e| AnalyzeError::Nested(e.to_string()))?;
    // What the session layer checks (whose sessions KILL reaches, whether
    // diagnostics may be shown) it checks on queries: not prepared.
    if super::super::is_diagnostics(&canonical) {
        return refuse(
            "SHOW WARNINGS, SHOW ERRORS and GET DIAGNOSTICS cannot be prepared through the \
             gateway; send them as queries",
        );
    }
    let mut st = analyze_text(&canonical, &inner, dialect, true)?;
    if st.analysis.operation == "kill" {
        return refuse("KILL cannot be prepared through the gateway; send it as a query");
    }
    // The gateway follows session settings when a statement changing them
    // runs; one hidden in a prepared statement would run out of its sight.
    let system_setting = st
        .analysis
        .settings
        .iter()
        .any(|s| s.name.as_deref().is_none_or(|n| !n.starts_with('@')));
    if system_setting || st.sql_mode.is_some() || st.uses_database.is_some() {
        return refuse(
            "preparing a statement that changes session settings is not supported through the \
             gateway; run it directly",
        );
    }
    st.analysis.prepares = Some(name.to_lowercase());
    st.analysis.operation = "prepare".into();
    Ok(Route::Prepared(Box::new(st)))
}

/// `LOAD DATA|XML [LOW_PRIORITY|CONCURRENT] INFILE 'f' [REPLACE|IGNORE]
/// INTO TABLE t …`: a copy into `t` from a file on the database server.
fn load(tokens: &Tokens<'_>) -> Result<Route, AnalyzeError> {
    one_statement(tokens)?;
    if tokens.is(1, "INDEX") {
        return admin(tokens, "load_index");
    }
    if !tokens.is_any(1, &["DATA", "XML"]) {
        return refuse("this LOAD form is not supported through the gateway");
    }
    let mut i = 2;
    if tokens.is_any(i, &["LOW_PRIORITY", "CONCURRENT"]) {
        i += 1;
    }
    if tokens.is(i, "LOCAL") {
        return refuse(
            "LOAD DATA LOCAL is refused: the gateway never lets a server read files from the client",
        );
    }
    if !(tokens.is(i, "INFILE") && tokens.kind(i + 1) == Some(Kind::Str)) {
        return refuse("LOAD DATA needs INFILE 'file'");
    }
    i += 2;
    let replace = tokens.is(i, "REPLACE");
    if replace || tokens.is(i, "IGNORE") {
        i += 1;
    }
    let target = match (
        tokens.is(i, "INTO") && tokens.is(i + 1, "TABLE"),
        tokens.name(i + 2),
    ) {
        (true, Some((t, _))) => t,
        _ => return refuse("LOAD DATA needs INTO TABLE name"),
    };
    let mut depth = 0usize;
    for j in i..tokens.len() {
        if tokens.punct(j, '(') {
            depth += 1;
        } else if tokens.punct(j, ')') {
            depth = depth.saturating_sub(1);
        } else if depth == 0 && tokens.is(j, "SET") {
            return refuse(
                "LOAD DATA … SET computes values the gateway cannot analyze; load the columns \
                 as they are and UPDATE them afterwards",
            );
        }
    }
    let mut f = Facts::new(ActionKind::CopyIn, "copy");
    f.flags.copy_file = true;
    f.action(ActionKind::CopyIn, Some(target.clone()), None);
    if replace {
        f.action(ActionKind::Delete, Some(target.clone()), Some(false));
    }
    f.columns.relations.push(gatehouse_sql::RelationName {
        name: target.name.clone(),
        table: Some(target),
        function: false,
    });
    Ok(Route::Done(Box::new(f)))
}

/// `LOCK TABLES t READ, u AS x WRITE` (like PostgreSQL's LOCK: a read of
/// each table, and `other`), `LOCK INSTANCE FOR BACKUP` (administration).
fn lock(tokens: &Tokens<'_>) -> Result<Route, AnalyzeError> {
    one_statement(tokens)?;
    if tokens.is(1, "INSTANCE") {
        return Ok(Route::Done(Box::new(Facts::new(
            ActionKind::Admin,
            "lock_instance",
        ))));
    }
    if !tokens.is_any(1, &["TABLE", "TABLES"]) {
        return refuse("this LOCK form is not supported through the gateway");
    }
    let mut f = Facts::new(ActionKind::Other, "lock");
    let mut i = 2;
    loop {
        let Some((t, mut next)) = tokens.name(i) else {
            return refuse("LOCK TABLES needs table names");
        };
        f.action(ActionKind::Select, Some(t), None);
        if tokens.is(next, "AS") {
            next += 1;
        }
        let lock_word = ["READ", "WRITE", "LOW_PRIORITY"];
        if !tokens.is_any(next, &lock_word) && tokens.part(next).is_some() {
            next += 1;
        }
        while tokens.is_any(next, &["READ", "WRITE", "LOW_PRIORITY", "LOCAL"]) {
            next += 1;
        }
        if tokens.punct(next, ',') {
            i = next + 1;
        } else if single(tokens, next) {
            return Ok(Route::Done(Box::new(f)));
        } else {
            return refuse("LOCK TABLES takes `name [AS alias] READ|WRITE, …`");
        }
    }
}

/// A GRANT or REVOKE the parser rejects (`GRANT … IDENTIFIED BY`, `GRANT
/// PROXY`): privileges, on the table after its first `ON` when it names one.
pub(super) fn grant(tokens: &Tokens<'_>) -> Result<Facts, AnalyzeError> {
    one_statement(tokens)?;
    let mut depth = 0usize;
    let mut on = None;
    for i in 1..tokens.len() {
        if tokens.punct(i, '(') {
            depth += 1;
        } else if tokens.punct(i, ')') {
            depth = depth.saturating_sub(1);
        } else if depth == 0 && tokens.is(i, "ON") {
            on = Some(i);
            break;
        }
    }
    let mut f = Facts::new(
        ActionKind::Dcl,
        if on.is_some() { "grant" } else { "grant_role" },
    );
    f.secret = tokens.mentions_secret();
    if let Some(i) = on {
        let mut j = i + 1;
        if tokens.is_any(j, &["FUNCTION", "PROCEDURE"]) {
            f.action(ActionKind::Dcl, None, None);
            return Ok(f);
        }
        if tokens.is(j, "TABLE") {
            j += 1;
        }
        // `*`, `*.*` and `db.*` are not tables: decided on the connection.
        let table: Option<TableRef> = tokens
            .name(j)
            .filter(|(_, next)| !tokens.punct(*next, '.'))
            .map(|(t, _)| t);
        f.action(ActionKind::Dcl, table, None);
    }
    Ok(f)
}
