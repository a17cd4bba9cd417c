//! Statements sqlparser reads only when spelled another way with the same
//! meaning: `DO x` as `SELECT x`, `TABLE t` as `SELECT * FROM t`, MariaDB's
//! `ANALYZE stmt` as `EXPLAIN ANALYZE stmt`, `UPDATE t1, t2` as a join,
//! `SET PERSIST` as `SET GLOBAL`, `:=` as `=`, `LOCK IN SHARE MODE` as
//! `FOR SHARE`, without the `LOW_PRIORITY`, `QUICK` and `IGNORE` of UPDATE
//! and DELETE (which it reads as table names); and a query's `INTO
//! OUTFILE`, `INTO DUMPFILE` or `INTO @var`, which it cannot read where
//! MySQL allows them, taken out and noted so that the analysis still counts
//! where the values go.

use super::keywords::{done, one_statement, refuse, single, Adjust, Route};
use super::scan::{Kind, Tokens};
use super::set;
use super::walk::Sink;
use super::{AnalyzeError, Facts};
use gatehouse_sql::ActionKind;

/// A statement rewritten to one the parser reads with the same meaning.
pub(super) fn rewrite(
    tokens: &Tokens<'_>,
    prefix: &str,
    root: Option<Sink>,
    operation: &'static str,
) -> Result<Route, AnalyzeError> {
    if tokens.len() < 2 {
        return refuse("the statement is incomplete");
    }
    Ok(Route::Parse {
        text: Some(format!("{prefix}{}", tokens.rest(1))),
        adjust: Adjust {
            root,
            operation: Some(operation),
            query_only: operation != "explain",
            ..Adjust::default()
        },
    })
}

/// A query: `INTO OUTFILE`, `INTO DUMPFILE` and `INTO @var` (which the
/// parser reads only in some places) are taken out and noted, and
/// `LOCK IN SHARE MODE` becomes its synonym `FOR SHARE`.
pub(super) fn query(tokens: &Tokens<'_>) -> Route {
    let mut cuts: Vec<(usize, usize, &str)> = Vec::new();
    let mut adjust = Adjust::default();
    let mut depth = 0usize;
    let mut i = 0;
    while i < tokens.len() {
        let span = &tokens.list[i].span;
        if tokens.punct(i, '(') {
            depth += 1;
        } else if tokens.punct(i, ')') {
            depth = depth.saturating_sub(1);
        } else if tokens.is(i, "LOCK")
            && tokens.is(i + 1, "IN")
            && tokens.is(i + 2, "SHARE")
            && tokens.is(i + 3, "MODE")
        {
            cuts.push((span.start, tokens.list[i + 3].span.end, "FOR SHARE"));
            i += 4;
            continue;
        } else if depth == 0 && tokens.is(i, "INTO") {
            let end = if tokens.is_any(i + 1, &["OUTFILE", "DUMPFILE"])
                && tokens.kind(i + 2) == Some(Kind::Str)
            {
                adjust.into_file = true;
                export_options(tokens, i + 3)
            } else if tokens.punct(i + 1, '@') {
                variables(tokens, i + 1)
            } else {
                i + 1
            };
            if end > i + 1 {
                adjust.root = Some(Sink::Derived);
                cuts.push((span.start, tokens.list[end - 1].span.end, ""));
                i = end;
                continue;
            }
        }
        i += 1;
    }
    if adjust.into_file {
        adjust.operation = Some("copy");
    }
    Route::Parse {
        text: splice(tokens, cuts),
        adjust,
    }
}

/// The text with each `(start, end, replacement)` applied (in order, not
/// overlapping), or `None` when there is nothing to change. Replacements
/// are spaced off so that no two tokens fuse.
fn splice(tokens: &Tokens<'_>, edits: Vec<(usize, usize, &str)>) -> Option<String> {
    if edits.is_empty() {
        return None;
    }
    let mut text = String::with_capacity(tokens.text.len() + 8 * edits.len());
    let mut at = 0;
    for (start, end, with) in edits {
        text.push_str(tokens.text.get(at..start).unwrap_or(""));
        text.push(' ');
        text.push_str(with);
        text.push(' ');
        at = end;
    }
    text.push_str(tokens.text.get(at..).unwrap_or(""));
    Some(text)
}

/// Past `INTO OUTFILE 'f'`'s export options (`CHARACTER SET x`,
/// `FIELDS TERMINATED BY ','`, `LINES STARTING BY …`).
fn export_options(tokens: &Tokens<'_>, mut i: usize) -> usize {
    loop {
        if tokens.is_any(i, &["FIELDS", "COLUMNS", "LINES", "OPTIONALLY"]) {
            i += 1;
        } else if (tokens.is_any(i, &["TERMINATED", "ENCLOSED", "ESCAPED", "STARTING"])
            && tokens.is(i + 1, "BY")
            && tokens.kind(i + 2) == Some(Kind::Str))
            || (tokens.is(i, "CHARACTER") && tokens.is(i + 1, "SET") && charset_at(tokens, i + 2))
        {
            i += 3;
        } else if tokens.is(i, "CHARSET") && charset_at(tokens, i + 1) {
            i += 2;
        } else {
            return i;
        }
    }
}

fn charset_at(tokens: &Tokens<'_>, i: usize) -> bool {
    tokens.part(i).is_some() || tokens.kind(i) == Some(Kind::Str)
}

/// Past `@a, @b`.
fn variables(tokens: &Tokens<'_>, mut i: usize) -> usize {
    while tokens.punct(i, '@') && charset_at(tokens, i + 1) {
        i += 2;
        if !(tokens.punct(i, ',') && tokens.punct(i + 1, '@')) {
            break;
        }
        i += 1;
    }
    i
}

/// UPDATE and DELETE: their modifiers left out, and in UPDATE's table
/// list a comma (a join without condition) spelled `JOIN`, which is all
/// sqlparser reads there.
pub(super) fn dml(tokens: &Tokens<'_>) -> Route {
    let update = tokens.is(0, "UPDATE");
    let modifiers: &[&str] = if update {
        &["LOW_PRIORITY", "IGNORE"]
    } else {
        &["LOW_PRIORITY", "QUICK", "IGNORE"]
    };
    let mut edits = Vec::new();
    let mut i = 1;
    while tokens.is_any(i, modifiers) {
        let span = &tokens.list[i].span;
        edits.push((span.start, span.end, ""));
        i += 1;
    }
    let mut depth = 0usize;
    while update && i < tokens.len() {
        if tokens.punct(i, '(') {
            depth += 1;
        } else if tokens.punct(i, ')') {
            depth = depth.saturating_sub(1);
        } else if depth == 0 && tokens.is(i, "SET") {
            break;
        } else if depth == 0 && tokens.punct(i, ',') {
            let span = &tokens.list[i].span;
            edits.push((span.start, span.end, "JOIN"));
        }
        i += 1;
    }
    Route::Parse {
        text: splice(tokens, edits),
        adjust: Adjust::default(),
    }
}

/// SET forms sqlparser cannot read, or reads as something else.
pub(super) fn set(tokens: &Tokens<'_>) -> Result<Route, AnalyzeError> {
    if tokens.is(1, "PASSWORD") {
        one_statement(tokens)?;
        let mut f = Facts::new(ActionKind::Dcl, "alter_role");
        f.secret = true;
        return Ok(Route::Done(Box::new(f)));
    }
    if tokens.is(1, "DEFAULT") && tokens.is(2, "ROLE") {
        return done(tokens, ActionKind::Dcl, "alter_role");
    }
    if tokens.is(1, "STATEMENT") {
        return refuse(
            "SET STATEMENT … FOR is not supported through the gateway; run SET and the statement \
             separately",
        );
    }
    let charset_at = if tokens.is(1, "CHARACTER") && tokens.is(2, "SET") {
        Some(3)
    } else if tokens.is(1, "CHARSET") {
        Some(2)
    } else {
        None
    };
    if let Some(i) = charset_at {
        one_statement(tokens)?;
        let value = tokens.part(i).or_else(|| tokens.string(i));
        let Some(charset) = value.filter(|_| single(tokens, i + 1)) else {
            return refuse("SET CHARACTER SET takes one character set name");
        };
        if charset.eq_ignore_ascii_case("default") && tokens.kind(i) == Some(Kind::Word) {
            return refuse(
                "SET CHARACTER SET DEFAULT is refused: the gateway cannot tell which character \
                 set the server's default is; name one (utf8mb4)",
            );
        }
        let mut f = Facts::new(ActionKind::Set, "variable_set");
        set::names(&mut f, &charset, false)?;
        return Ok(Route::Done(Box::new(f)));
    }
    // `SET PERSIST x = …` is `SET GLOBAL x = …` that also survives a
    // restart, and `:=` assigns as `=` does: spelled so sqlparser reads them.
    let mut edits = Vec::new();
    let mut depth = 0usize;
    let mut expect_assignment = true;
    for i in 1..tokens.len() {
        let span = &tokens.list[i].span;
        if tokens.punct(i, '(') {
            depth += 1;
        } else if tokens.punct(i, ')') {
            depth = depth.saturating_sub(1);
        } else if depth == 0 {
            if tokens.punct(i, ',') {
                expect_assignment = true;
            } else if tokens.is_any(i, &["PERSIST", "PERSIST_ONLY"])
                && (i == 1 || tokens.punct(i - 1, ','))
            {
                edits.push((span.start, span.end, "GLOBAL"));
            } else if expect_assignment && tokens.punct(i, ':') && tokens.punct(i + 1, '=') {
                expect_assignment = false;
                edits.push((span.start, span.end, ""));
            } else if tokens.punct(i, '=') {
                expect_assignment = false;
            }
        }
    }
    Ok(Route::Parse {
        text: splice(tokens, edits),
        adjust: Adjust::default(),
    })
}
