//! Parsed statements into facts, one sqlparser `Statement` variant at a
//! time. Each variant that means something in MySQL is mapped; every other
//! one is refused by name (the `_` arm), so that a statement this module
//! does not know can never pass for a harmless one.
//!
//! The rules here (and in [`super::dml`], [`super::ddl`], [`super::set`])
//! say what the statement itself targets (the table written, created or
//! described) and what each part of it feeds; one [`Walk`] over the whole
//! tree then finds every table read and function called in it.

use super::keywords::Adjust;
use super::names::{function_name, table_ref};
use super::scan::{Kind, Tokens};
use super::walk::{Sink, Walk};
use super::{ddl, dml, set, AnalyzeError, Facts};
use gatehouse_sql::ActionKind;
use sqlparser::ast::{
    ObjectName, ShowCreateObject, ShowStatementFilter, ShowStatementFilterPosition,
    ShowStatementOptions, Statement, Use,
};

/// The facts of one parsed statement.
pub(super) fn analyze_statement(
    stmt: &Statement,
    tokens: &Tokens<'_>,
    adjust: &Adjust,
) -> Result<Facts, AnalyzeError> {
    if adjust.query_only && !matches!(stmt, Statement::Query(_)) {
        return Err(unsupported(tokens));
    }
    let mut f = Facts::new(ActionKind::Select, "select");
    let mut w = Walk::new(adjust.root.unwrap_or(Sink::Derived));
    statement(stmt, tokens, adjust, &mut f, &mut w)?;
    w.run(stmt)?;
    f.absorb(w);
    if let Some(op) = adjust.operation {
        f.operation = op.to_string();
    }
    if adjust.into_file {
        // `SELECT … INTO OUTFILE`: the result goes to a file on the server,
        // as with PostgreSQL's `COPY (query) TO 'file'`.
        f.kind = ActionKind::CopyOut;
        f.flags.copy_file = true;
    }
    Ok(f)
}

/// `… is not supported through the gateway`, naming the statement by its
/// leading keywords.
pub(super) fn unsupported(tokens: &Tokens<'_>) -> AnalyzeError {
    let words: Vec<String> = (0..2).map_while(|i| tokens.upper(i)).collect();
    let name = if words.is_empty() {
        "this statement".to_string()
    } else {
        words.join(" ")
    };
    AnalyzeError::Unsupported(format!("{name} is not supported through the gateway"))
}

fn statement(
    stmt: &Statement,
    tokens: &Tokens<'_>,
    adjust: &Adjust,
    f: &mut Facts,
    w: &mut Walk,
) -> Result<(), AnalyzeError> {
    match stmt {
        Statement::Query(q) => {
            f.kind = ActionKind::Select;
            f.operation = "select".into();
            w.sink_query(q, adjust.root.unwrap_or(Sink::Output));
        }
        Statement::Insert(ins) => dml::insert(ins, f, w)?,
        Statement::Update(u) => dml::update(u, f, w)?,
        Statement::Delete(d) => dml::delete(d, f, w)?,
        Statement::Explain {
            analyze,
            statement: inner,
            ..
        } => explain(*analyze, inner, tokens, f, w)?,
        Statement::ExplainTable { table_name, .. } => {
            // DESCRIBE t shows t's columns: a read of t's metadata, decided
            // as a read of t.
            f.kind = ActionKind::Select;
            f.operation = "describe".into();
            w.skip(table_name);
            f.action(ActionKind::Select, Some(table_ref(table_name)?), None);
        }
        Statement::Call(func) => {
            f.kind = ActionKind::Procedural;
            f.operation = "call".into();
            f.flags.opaque_code = true;
            // A procedure is never a built-in: always opaque.
            let name = function_name(&func.name)?;
            f.opaque.insert(name.clone());
            f.functions.insert(name);
        }
        Statement::Execute {
            name: Some(name),
            parameters,
            immediate: false,
            into,
            output: false,
            default: false,
            ..
        } if parameters.is_empty() && into.is_empty() && name.0.len() == 1 => {
            f.kind = ActionKind::Set;
            f.operation = "execute".into();
            f.executes = Some(function_name(name)?);
        }
        Statement::StartTransaction {
            statements,
            exception: None,
            ..
        } if statements.is_empty() => transaction(f),
        Statement::Commit { .. }
        | Statement::Rollback { .. }
        | Statement::Savepoint { .. }
        | Statement::ReleaseSavepoint { .. } => transaction(f),
        Statement::Set(s) => set::set(s, tokens, f, w)?,
        Statement::Use(Use::Object(db)) if db.0.len() == 1 => {
            f.kind = ActionKind::Set;
            f.operation = "use".into();
            f.uses_database = Some(table_ref(db)?.name);
        }
        Statement::ShowColumns { show_options, .. } => {
            f.operation = "show_columns".into();
            match show_in(show_options, w) {
                Some(name) => {
                    f.kind = ActionKind::Select;
                    f.action(ActionKind::Select, Some(table_ref(name)?), None);
                }
                None => return Err(unsupported(tokens)),
            }
        }
        Statement::ShowCreate { obj_type, obj_name } => {
            f.operation = "show_create".into();
            if matches!(obj_type, ShowCreateObject::Table | ShowCreateObject::View) {
                f.kind = ActionKind::Select;
                f.action(ActionKind::Select, Some(table_ref(obj_name)?), None);
            } else {
                f.kind = ActionKind::Set;
            }
        }
        Statement::ShowTables { show_options, .. }
        | Statement::ShowDatabases { show_options, .. }
        | Statement::ShowSchemas { show_options, .. } => {
            show_in(show_options, w);
            if let Some(
                ShowStatementFilterPosition::Infix(filter)
                | ShowStatementFilterPosition::Suffix(filter),
            ) = &show_options.filter_position
            {
                show_filter(filter, w);
            }
            show(f);
        }
        Statement::ShowVariables { filter, .. }
        | Statement::ShowStatus { filter, .. }
        | Statement::ShowCollation { filter } => {
            if let Some(filter) = filter {
                show_filter(filter, w);
            }
            show(f);
        }
        Statement::ShowCharset(_) | Statement::ShowProcessList { .. } => show(f),
        Statement::ShowVariable { .. } => show_other(tokens, f)?,
        other => ddl::statement(other, tokens, f, w)?,
    }
    Ok(())
}

fn transaction(f: &mut Facts) {
    f.kind = ActionKind::Transaction;
    f.operation = "transaction".into();
}

fn show(f: &mut Facts) {
    // SHOW displays state, like PostgreSQL's SHOW.
    f.kind = ActionKind::Set;
    f.operation = "show".into();
}

/// A SHOW's `WHERE` only picks the rows shown.
fn show_filter(filter: &ShowStatementFilter, w: &mut Walk) {
    if let ShowStatementFilter::Where(e) = filter {
        w.sink_expr(e, Sink::Filter);
    }
}

/// `FROM x` of a SHOW: a name, not a table read.
fn show_in<'s>(o: &'s ShowStatementOptions, w: &mut Walk) -> Option<&'s ObjectName> {
    let name = o.show_in.as_ref()?.parent_name.as_ref()?;
    w.skip(name);
    Some(name)
}

/// Every other SHOW, which sqlparser reads as a bare list of words and
/// silently drops anything else: only plain words, names, literals and
/// `LIMIT`s pass, so no expression (a subquery in `WHERE`) can hide in it.
fn show_other(tokens: &Tokens<'_>, f: &mut Facts) -> Result<(), AnalyzeError> {
    for i in 1..tokens.len() {
        let ok = match tokens.kind(i) {
            Some(Kind::Word) => !tokens.is_any(i, &["WHERE", "SELECT"]),
            Some(Kind::Ident | Kind::Str | Kind::Num) => true,
            Some(Kind::Punct('.' | ',' | '@' | ';')) => true,
            // `CURRENT_USER()`: an empty pair of parentheses only.
            Some(Kind::Punct('(')) => tokens.punct(i + 1, ')'),
            Some(Kind::Punct(')')) => tokens.punct(i - 1, '('),
            _ => false,
        };
        if !ok {
            return Err(AnalyzeError::Unsupported(
                "this SHOW form is not supported through the gateway (no WHERE or expressions)"
                    .into(),
            ));
        }
    }
    show(f);
    // SHOW INDEX|INDEXES|KEYS FROM t [FROM db]: t's metadata, as DESCRIBE.
    if tokens.is_any(1, &["INDEX", "INDEXES", "KEYS"]) && tokens.is_any(2, &["FROM", "IN"]) {
        if let Some((mut t, next)) = tokens.name(3) {
            if tokens.is_any(next, &["FROM", "IN"]) {
                t.schema = tokens.part(next + 1);
            }
            f.kind = ActionKind::Select;
            f.operation = "show_index".into();
            f.action(ActionKind::Select, Some(t), None);
        }
    }
    Ok(())
}

fn explain(
    analyze: bool,
    inner: &Statement,
    tokens: &Tokens<'_>,
    f: &mut Facts,
    w: &mut Walk,
) -> Result<(), AnalyzeError> {
    if !matches!(
        inner,
        Statement::Query(_) | Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_)
    ) {
        return Err(unsupported(tokens));
    }
    // Nothing of a plan leaves as column values.
    let plan = Adjust {
        root: Some(Sink::Filter),
        ..Adjust::default()
    };
    if analyze {
        // EXPLAIN ANALYZE runs the statement: it is what its statement is.
        f.flags.explain_analyze = true;
        statement(inner, tokens, &plan, f, w)?;
    } else {
        f.explain_only = true;
        statement(inner, tokens, &plan, f, w)?;
        f.kind = ActionKind::Explain;
    }
    f.operation = "explain".into();
    Ok(())
}
