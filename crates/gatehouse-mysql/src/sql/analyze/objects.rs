//! CREATE, ALTER, DROP and RENAME of the objects sqlparser's MySQL dialect
//! cannot parse: stored programs (procedures, functions, triggers, events),
//! whose bodies hold `;`s and run later as their definer, and accounts
//! (`CREATE USER … IDENTIFIED BY`), whose statements hold passwords. Their
//! keywords say what they do; nothing in them runs when they do.

use super::keywords::{done, one_statement, parse, refuse, single, Route};
use super::scan::Tokens;
use super::{AnalyzeError, Facts};
use gatehouse_sql::ActionKind;
use std::collections::HashSet;

/// The object keyword of a CREATE/ALTER/DROP/RENAME and its index, past
/// `OR REPLACE`, `DEFINER = user`, `ALGORITHM = …`, `SQL SECURITY …`.
fn object_word(tokens: &Tokens<'_>) -> Option<(usize, String)> {
    const OBJECTS: &[&str] = &[
        "PROCEDURE",
        "FUNCTION",
        "EVENT",
        "TRIGGER",
        "USER",
        "TABLE",
        "TABLES",
        "VIEW",
        "INDEX",
        "DATABASE",
        "SCHEMA",
        "ROLE",
        "SERVER",
        "TABLESPACE",
        "INSTANCE",
        "PREPARE",
        "LOGFILE",
        "RESOURCE",
        "SPATIAL",
        "UNDO",
        "SEQUENCE",
    ];
    let mut i = 1;
    while i < tokens.len().min(24) {
        if tokens.is(i, "DEFINER") && tokens.punct(i + 1, '=') {
            // The definer's name may be any word, `trigger@localhost` too.
            i += 3;
            if tokens.punct(i, '@') {
                i += 2;
            }
            if tokens.punct(i, '(') && tokens.punct(i + 1, ')') {
                i += 2;
            }
            continue;
        }
        if tokens.is_any(i, OBJECTS) {
            return tokens.upper(i).map(|w| (i, w));
        }
        i += 1;
    }
    None
}

pub(super) fn object(tokens: &Tokens<'_>, verb: &str) -> Result<Route, AnalyzeError> {
    let Some((at, object)) = object_word(tokens) else {
        return parse();
    };
    match (verb, object.as_str()) {
        ("CREATE", "PROCEDURE" | "FUNCTION" | "EVENT" | "TRIGGER") => routine(tokens, at, &object),
        ("ALTER", "PROCEDURE" | "FUNCTION") => {
            one_statement(tokens)?;
            Ok(Route::Done(Box::new(Facts::new(
                ActionKind::Ddl,
                "alter_function",
            ))))
        }
        ("ALTER", "EVENT") => {
            body_is_one_statement(tokens)?;
            let mut f = Facts::new(ActionKind::Ddl, "alter_event");
            f.flags.opaque_code = (0..tokens.len()).any(|i| tokens.is(i, "DO"));
            f.secret = tokens.mentions_secret();
            Ok(Route::Done(Box::new(f)))
        }
        ("DROP", "EVENT") => done(tokens, ActionKind::Ddl, "drop"),
        ("ALTER", "DATABASE" | "SCHEMA") => done(tokens, ActionKind::Ddl, "alter_database"),
        ("ALTER", "INSTANCE") => done(tokens, ActionKind::Admin, "alter_instance"),
        (_, "USER") => {
            one_statement(tokens)?;
            let (op, secret) = match verb {
                "CREATE" => ("create_role", true),
                "ALTER" => ("alter_role", true),
                "DROP" => ("drop_role", false),
                _ => ("rename", false),
            };
            let mut f = Facts::new(ActionKind::Dcl, op);
            f.secret = secret || tokens.mentions_secret();
            Ok(Route::Done(Box::new(f)))
        }
        _ => parse(),
    }
}

/// `CREATE [DEFINER = …] PROCEDURE|FUNCTION|EVENT|TRIGGER …`: DDL whose
/// body the gateway does not see into (it runs later, as its definer).
fn routine(tokens: &Tokens<'_>, at: usize, object: &str) -> Result<Route, AnalyzeError> {
    body_is_one_statement(tokens)?;
    let soname = object == "FUNCTION" && (at..tokens.len()).any(|i| tokens.is(i, "SONAME"));
    let (kind, op) = match object {
        // A loadable function is a shared library loaded into the server.
        _ if soname => (ActionKind::Admin, "create_function"),
        "TRIGGER" => (ActionKind::Ddl, "create_trig"),
        "EVENT" => (ActionKind::Ddl, "create_event"),
        _ => (ActionKind::Ddl, "create_function"),
    };
    let mut f = Facts::new(kind, op);
    f.flags.opaque_code = true;
    f.secret = tokens.mentions_secret();
    if object == "TRIGGER" {
        // TRIGGER name {BEFORE|AFTER} {INSERT|UPDATE|DELETE} ON table
        let on = (at..tokens.len().min(at + 16)).find(|&i| {
            tokens.is(i, "ON")
                && tokens.is_any(i.saturating_sub(1), &["INSERT", "UPDATE", "DELETE"])
                && tokens.is_any(i.saturating_sub(2), &["BEFORE", "AFTER"])
        });
        let Some((table, _)) = on.and_then(|i| tokens.name(i + 1)) else {
            return refuse("CREATE TRIGGER needs `{BEFORE|AFTER} {INSERT|UPDATE|DELETE} ON table`");
        };
        f.action(ActionKind::Ddl, Some(table), None);
    }
    Ok(Route::Done(Box::new(f)))
}

/// A stored program's body holds `;`s inside BEGIN … END and the other
/// blocks: only one after the last block closes ends the statement, and
/// anything after it is a second statement. (The server, which the
/// gateway never lets run several statements at once, refuses one too;
/// this is so the analysis never describes less than what is sent.)
fn body_is_one_statement(tokens: &Tokens<'_>) -> Result<(), AnalyzeError> {
    let calls = function_parentheses(tokens);
    // `IF(a, b, c)` and `REPEAT(s, n)` are functions; `IF [NOT] EXISTS name`
    // is a clause of CREATE and DROP; any other IF or REPEAT opens a block.
    let opens = |i: usize| {
        let call = tokens.punct(i + 1, '(') && calls.contains(&(i + 1));
        let exists = if tokens.is(i + 1, "NOT") {
            i + 2
        } else {
            i + 1
        };
        let clause = tokens.is(exists, "EXISTS") && !tokens.punct(exists + 1, '(');
        !call && !clause
    };
    let mut blocks: Vec<String> = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let word = tokens.upper(i);
        match word.as_deref() {
            Some("END") => {
                let closes = tokens
                    .upper(i + 1)
                    .filter(|w| matches!(w.as_str(), "IF" | "LOOP" | "WHILE" | "REPEAT" | "CASE"));
                let closed = blocks.pop();
                let balanced = match &closes {
                    Some(kind) => closed.as_ref() == Some(kind),
                    None => matches!(closed.as_deref(), Some("BEGIN" | "CASE")),
                };
                if !balanced {
                    return refuse("the routine body's blocks do not balance");
                }
                if closes.is_some() {
                    i += 1;
                }
            }
            Some(w @ ("BEGIN" | "CASE" | "LOOP" | "WHILE")) => blocks.push(w.to_string()),
            Some(w @ ("IF" | "REPEAT")) if opens(i) => blocks.push(w.to_string()),
            _ if tokens.punct(i, ';') && blocks.is_empty() && !single(tokens, i) => {
                return Err(AnalyzeError::MultipleStatements);
            }
            _ => {}
        }
        i += 1;
    }
    if blocks.is_empty() {
        Ok(())
    } else {
        refuse("the routine body's blocks do not balance")
    }
}

/// The `(` of each parenthesis pair with a comma directly inside: the
/// arguments of a function call rather than a parenthesized condition.
fn function_parentheses(tokens: &Tokens<'_>) -> HashSet<usize> {
    let mut open: Vec<usize> = Vec::new();
    let mut calls = HashSet::new();
    for i in 0..tokens.len() {
        if tokens.punct(i, '(') {
            open.push(i);
        } else if tokens.punct(i, ')') {
            open.pop();
        } else if tokens.punct(i, ',') {
            if let Some(&at) = open.last() {
                calls.insert(at);
            }
        }
    }
    calls
}
