//! Statements sqlparser reads only when spelled another way with the same
//! meaning: `DO x` as `SELECT x`, `TABLE t` as `SELECT * FROM t`, MariaDB's
//! `ANALYZE stmt` as `EXPLAIN ANALYZE stmt`, `UPDATE t1, t2` as a join,
//! `SET PERSIST` as `SET GLOBAL`, `:=` as `=`, `LOCK IN SHARE MODE` as
//! `FOR SHARE`; and a query's `INTO OUTFILE`, `INTO DUMPFILE` or `INTO
//! @var`, which it cannot read where MySQL allows them, taken out and noted
//! so that the analysis still counts where the values go.

use super::keywords::{done, one_statement, parse, refuse, single, Adjust, Route};
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
    if cuts.is_empty() {
        return Route::Parse { text: None, adjust };
    }
    let mut text = String::with_capacity(tokens.text.len());
    let mut at = 0;
    for (start, end, with) in cuts {
        text.push_str(tokens.text.get(at..start).unwrap_or(""));
        text.push(' ');
        text.push_str(with);
        text.push(' ');
        at = end;
    }
    text.push_str(tokens.text.get(at..).unwrap_or(""));
    Route::Parse {
        text: Some(text),
        adjust,
    }
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

/// `UPDATE t1, t2 SET …`: sqlparser reads only joins there, and a comma
/// in MySQL's table list is a join without condition.
pub(super) fn update(tokens: &Tokens<'_>) -> Route {
    let mut commas = Vec::new();
    let mut depth = 0usize;
    for i in 1..tokens.len() {
        if tokens.punct(i, '(') {
            depth += 1;
        } else if tokens.punct(i, ')') {
            depth = depth.saturating_sub(1);
        } else if depth == 0 && tokens.is(i, "SET") {
            break;
        } else if depth == 0 && tokens.punct(i, ',') {
            commas.push(tokens.list[i].span.clone());
        }
    }
    if commas.is_empty() {
        return Route::Parse {
            text: None,
            adjust: Adjust::default(),
        };
    }
    let mut text = String::with_capacity(tokens.text.len() + 8 * commas.len());
    let mut at = 0;
    for span in commas {
        text.push_str(tokens.text.get(at..span.start).unwrap_or(""));
        text.push_str(" JOIN ");
        at = span.end;
    }
    text.push_str(tokens.text.get(at..).unwrap_or(""));
    Route::Parse {
        text: Some(text),
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
        set::names(&mut f, &charset, "SET CHARACTER SET")?;
        return Ok(Route::Done(Box::new(f)));
    }
    // `SET PERSIST x = …` is `SET GLOBAL x = …` that also survives a
    // restart, and `:=` assigns as `=` does: spelled so sqlparser reads them.
    let mut text = String::with_capacity(tokens.text.len());
    let mut at = 0;
    let mut depth = 0usize;
    let mut expect_assignment = true;
    for i in 1..tokens.len() {
        let span = &tokens.list[i].span;
        let replace = if tokens.punct(i, '(') {
            depth += 1;
            None
        } else if tokens.punct(i, ')') {
            depth = depth.saturating_sub(1);
            None
        } else if depth > 0 {
            None
        } else if tokens.punct(i, ',') {
            expect_assignment = true;
            None
        } else if tokens.is_any(i, &["PERSIST", "PERSIST_ONLY"]) {
            Some((span.start, span.end, "GLOBAL"))
        } else if expect_assignment && tokens.punct(i, ':') && tokens.punct(i + 1, '=') {
            expect_assignment = false;
            Some((span.start, span.end, " "))
        } else {
            if tokens.punct(i, '=') {
                expect_assignment = false;
            }
            None
        };
        if let Some((start, end, with)) = replace {
            text.push_str(tokens.text.get(at..start).unwrap_or(""));
            text.push_str(with);
            at = end;
        }
    }
    if at == 0 {
        return parse();
    }
    text.push_str(tokens.text.get(at..).unwrap_or(""));
    Ok(Route::Parse {
        text: Some(text),
        adjust: Adjust::default(),
    })
}
