//! INSERT, REPLACE, UPDATE and DELETE: which tables each writes, with
//! which WHERE, and what the values it stores feed. MySQL's multi-table
//! forms (`UPDATE t JOIN u … SET`, `DELETE t FROM t JOIN u`, `DELETE FROM
//! t USING t JOIN u`) write only the tables SET assigns or the list names;
//! the other tables of their joins are read.

use super::names::table_ref;
use super::walk::{Sink, Walk};
use super::{bounds, AnalyzeError, Facts};
use gatehouse_sql::{ActionKind, TableRef};
use sqlparser::ast::{
    Expr, FromTable, JoinConstraint, JoinOperator, ObjectName, OnInsert, Query, SelectItem,
    SetExpr, TableFactor, TableObject, TableWithJoins,
};

/// INSERT and REPLACE (a delete of the rows the new ones collide with,
/// then an insert), with `ON DUPLICATE KEY UPDATE` an update too.
pub(super) fn insert(
    ins: &sqlparser::ast::Insert,
    f: &mut Facts,
    w: &mut Walk,
) -> Result<(), AnalyzeError> {
    let TableObject::TableName(name) = &ins.table else {
        return Err(AnalyzeError::Unsupported(
            "INSERT into a table function is not MySQL syntax".into(),
        ));
    };
    if ins.or.is_some()
        || ins.overwrite
        || ins.output.is_some()
        || ins.format_clause.is_some()
        || ins.multi_table_insert_type.is_some()
        || ins.settings.is_some()
        || matches!(ins.on, Some(OnInsert::OnConflict(_)))
    {
        return Err(AnalyzeError::Unsupported(
            "this INSERT clause is not MySQL syntax and is not supported through the gateway"
                .into(),
        ));
    }
    w.skip(name);
    let table = table_ref(name)?;
    w.relation(
        table.clone(),
        ins.table_alias.as_ref().map(|a| a.alias.value.as_str()),
    );
    f.kind = ActionKind::Insert;
    f.operation = if ins.replace_into {
        "replace"
    } else {
        "insert"
    }
    .into();
    f.action(ActionKind::Insert, Some(table.clone()), None);
    if ins.replace_into {
        // REPLACE deletes the rows the new ones collide with, with no WHERE.
        f.action(ActionKind::Delete, Some(table.clone()), Some(false));
    }
    if let Some(OnInsert::DuplicateKeyUpdate(assignments)) = &ins.on {
        // An upsert, like PostgreSQL's ON CONFLICT DO UPDATE without WHERE.
        f.action(ActionKind::Update, Some(table), Some(false));
        for a in assignments {
            w.sink_expr(&a.value, Sink::Derived);
        }
    }
    // What is inserted is stored: no origin any later read could report.
    if let Some(q) = &ins.source {
        w.sink_query(q, Sink::Derived);
    }
    returning(ins.returning.as_deref(), w);
    if !ins.replace_into {
        f.values_rows = match &ins.source {
            Some(q) => values_rows(q),
            None if !ins.assignments.is_empty() => Some(1),
            None => None,
        };
    }
    Ok(())
}

/// The rows of an `INSERT … VALUES` without a WITH (whose own writes would count).
fn values_rows(q: &Query) -> Option<u64> {
    if q.with.is_some() {
        return None;
    }
    match &*q.body {
        SetExpr::Values(v) => u64::try_from(v.rows.len()).ok().filter(|n| *n > 0),
        _ => None,
    }
}

/// MariaDB's RETURNING: what it sends back is not described with an origin
/// for sure, so it counts as derived.
fn returning(items: Option<&[SelectItem]>, w: &mut Walk) {
    for item in items.unwrap_or(&[]) {
        match item {
            SelectItem::UnnamedExpr(e)
            | SelectItem::ExprWithAlias { expr: e, .. }
            | SelectItem::ExprWithAliases { expr: e, .. } => w.sink_expr(e, Sink::Derived),
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => {
                w.flow.derived.push(gatehouse_sql::ColumnUse {
                    qualifier: None,
                    column: "*".into(),
                });
            }
        }
    }
}

/// MySQL joins at most 61 tables; more (which it refuses) would only make
/// matching targets to tables slow.
const MAX_TABLES: usize = 64;

fn too_many(n: usize) -> Result<(), AnalyzeError> {
    if n > MAX_TABLES {
        return Err(AnalyzeError::Unsupported(format!(
            "a statement writing through more than {MAX_TABLES} tables is not supported"
        )));
    }
    Ok(())
}

/// A table named in an UPDATE's or DELETE's table list.
struct Named<'a> {
    name: &'a ObjectName,
    table: TableRef,
    alias: Option<String>,
}

impl Named<'_> {
    /// Whether `reference` (a target as an UPDATE's SET or a multi-table
    /// DELETE's list names it) means this table.
    fn is(&self, reference: &TableRef) -> bool {
        match &self.alias {
            Some(a) => reference.schema.is_none() && &reference.name == a,
            None => {
                reference.name == self.table.name
                    && (reference.schema.is_none() || reference.schema == self.table.schema)
            }
        }
    }

    fn names(&self) -> Vec<&str> {
        let mut n = vec![self.table.name.as_str()];
        n.extend(self.alias.as_deref());
        n
    }
}

/// The named tables of FROM items, nested joins included.
fn named<'a>(items: &'a [TableWithJoins]) -> Result<Vec<Named<'a>>, AnalyzeError> {
    let mut out = Vec::new();
    let mut pending: Vec<&TableFactor> = Vec::new();
    for twj in items {
        pending.push(&twj.relation);
        pending.extend(twj.joins.iter().map(|j| &j.relation));
    }
    while let Some(tf) = pending.pop() {
        match tf {
            TableFactor::Table {
                name,
                alias,
                args: None,
                ..
            } => out.push(Named {
                name,
                table: table_ref(name)?,
                alias: alias.as_ref().map(|a| a.name.value.clone()),
            }),
            TableFactor::NestedJoin {
                table_with_joins, ..
            } => {
                pending.push(&table_with_joins.relation);
                pending.extend(table_with_joins.joins.iter().map(|j| &j.relation));
            }
            _ => {}
        }
    }
    too_many(out.len())?;
    out.reverse();
    Ok(out)
}

/// UPDATE, single- or multi-table.
pub(super) fn update(
    u: &sqlparser::ast::Update,
    f: &mut Facts,
    w: &mut Walk,
) -> Result<(), AnalyzeError> {
    if u.from.is_some() || u.or.is_some() || u.output.is_some() || u.settings.is_some() {
        return Err(AnalyzeError::Unsupported(
            "this UPDATE clause is not MySQL syntax and is not supported through the gateway"
                .into(),
        ));
    }
    f.kind = ActionKind::Update;
    f.operation = "update".into();
    let tables = named(std::slice::from_ref(&u.table))?;
    let joined = tables.len() > 1 || !u.table.joins.is_empty();
    // The tables SET writes: the one a column is qualified with, or, for an
    // unqualified column of a join, any of them (only the server knows which).
    let mut written = vec![false; tables.len()];
    for a in &u.assignments {
        w.sink_expr(&a.value, Sink::Derived);
        let targets: Vec<&ObjectName> = match &a.target {
            sqlparser::ast::AssignmentTarget::ColumnName(c) => vec![c],
            sqlparser::ast::AssignmentTarget::Tuple(cs) => cs.iter().collect(),
        };
        for c in targets {
            let qualifier = match c.0.len() {
                0 | 1 => None,
                n => Some(table_ref(&ObjectName(c.0[..n - 1].to_vec()))?),
            };
            for (i, t) in tables.iter().enumerate() {
                if qualifier.as_ref().is_none_or(|q| t.is(q)) || tables.len() == 1 {
                    written[i] = true;
                }
            }
        }
    }
    if tables.is_empty() {
        return Err(AnalyzeError::Unsupported(
            "UPDATE of something other than a table is not supported through the gateway".into(),
        ));
    }
    if !written.contains(&true) {
        // SET names no table of the statement: the server will refuse it,
        // but count every table as written rather than none.
        written.iter_mut().for_each(|x| *x = true);
    }
    for (t, _) in tables.iter().zip(&written).filter(|(_, w)| **w) {
        w.skip(t.name);
        let has_where = bounded(u.selection.as_ref(), &[&u.table], &t.names(), joined);
        f.action(ActionKind::Update, Some(t.table.clone()), Some(has_where));
    }
    w.joins(&u.table, Sink::Filter);
    filters(u.selection.as_ref(), &u.order_by, u.limit.as_ref(), w);
    returning(u.returning.as_deref(), w);
    Ok(())
}

/// Whether the WHERE, or the ON of an inner join (which drops the rows it
/// does not match, as PostgreSQL's `FROM … WHERE` would), bounds a target.
fn bounded(
    selection: Option<&Expr>,
    joins: &[&TableWithJoins],
    names: &[&str],
    joined: bool,
) -> bool {
    let target = bounds::Target { names, joined };
    if bounds::restricts(selection, &target) {
        return true;
    }
    let mut pending: Vec<&TableWithJoins> = joins.to_vec();
    while let Some(twj) = pending.pop() {
        for j in &twj.joins {
            if let TableFactor::NestedJoin {
                table_with_joins, ..
            } = &j.relation
            {
                pending.push(table_with_joins);
            }
            let on = match &j.join_operator {
                JoinOperator::Join(JoinConstraint::On(e))
                | JoinOperator::Inner(JoinConstraint::On(e))
                | JoinOperator::CrossJoin(JoinConstraint::On(e))
                | JoinOperator::StraightJoin(JoinConstraint::On(e)) => e,
                _ => continue,
            };
            if bounds::restricts(Some(on), &target) {
                return true;
            }
        }
        if let TableFactor::NestedJoin {
            table_with_joins, ..
        } = &twj.relation
        {
            pending.push(table_with_joins);
        }
    }
    false
}

fn filters(
    selection: Option<&Expr>,
    order_by: &[sqlparser::ast::OrderByExpr],
    limit: Option<&Expr>,
    w: &mut Walk,
) {
    for e in selection.into_iter().chain(limit) {
        w.sink_expr(e, Sink::Filter);
    }
    for o in order_by {
        w.sink_expr(&o.expr, Sink::Filter);
    }
}

/// DELETE, single- or multi-table.
pub(super) fn delete(
    d: &sqlparser::ast::Delete,
    f: &mut Facts,
    w: &mut Walk,
) -> Result<(), AnalyzeError> {
    if d.output.is_some() || d.settings.is_some() || d.on_cluster.is_some() {
        return Err(AnalyzeError::Unsupported(
            "this DELETE clause is not MySQL syntax and is not supported through the gateway"
                .into(),
        ));
    }
    f.kind = ActionKind::Delete;
    f.operation = "delete".into();
    let from = match &d.from {
        FromTable::WithFromKeyword(v) | FromTable::WithoutKeyword(v) => v,
    };
    // MySQL's three forms: `DELETE FROM t`, `DELETE t1, t2 FROM <joins>`
    // and `DELETE FROM t1, t2 USING <joins>`. Each target is written, not
    // read, wherever the joins name it.
    let mut targets: Vec<(TableRef, Vec<String>)> = Vec::new();
    let mut add = |t: &Named<'_>, w: &mut Walk| {
        w.skip(t.name);
        let names = t.names().into_iter().map(str::to_string).collect();
        targets.push((t.table.clone(), names));
    };
    let sources = match (&d.using, d.tables.is_empty()) {
        (Some(using), true) => {
            let sources = named(using)?;
            for t in named(from)? {
                let table = t.table.clone();
                add(&t, w);
                for s in sources.iter().filter(|s| s.is(&table)) {
                    w.skip(s.name);
                }
            }
            sources
        }
        (None, false) => {
            too_many(d.tables.len())?;
            let sources = named(from)?;
            for n in &d.tables {
                let target = target_name(n)?;
                let matching: Vec<&Named<'_>> = sources.iter().filter(|s| s.is(&target)).collect();
                match matching.first() {
                    Some(first) => {
                        for s in &matching {
                            w.skip(s.name);
                        }
                        let names = first.names().into_iter().map(str::to_string).collect();
                        targets.push((first.table.clone(), names));
                    }
                    None => targets.push((target.clone(), vec![target.name.clone()])),
                }
            }
            sources
        }
        (None, true) => {
            let sources = named(from)?;
            if from.len() != 1 || !from[0].joins.is_empty() || sources.len() != 1 {
                return Err(AnalyzeError::Unsupported(
                    "DELETE FROM several tables needs a table list or USING".into(),
                ));
            }
            add(&sources[0], w);
            sources
        }
        (Some(_), false) => {
            return Err(AnalyzeError::Unsupported(
                "DELETE with both a table list and USING is not MySQL syntax".into(),
            ))
        }
    };
    let joined = sources.len() > 1 || targets.len() > 1;
    let joins: Vec<&TableWithJoins> = from.iter().chain(d.using.iter().flatten()).collect();
    for (table, names) in targets {
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let has_where = bounded(d.selection.as_ref(), &joins, &names, joined);
        f.action(ActionKind::Delete, Some(table), Some(has_where));
    }
    for twj in from.iter().chain(d.using.iter().flatten()) {
        w.joins(twj, Sink::Filter);
    }
    filters(d.selection.as_ref(), &d.order_by, d.limit.as_ref(), w);
    returning(d.returning.as_deref(), w);
    Ok(())
}

/// A multi-table DELETE's target: `t`, `db.t` or `t.*`.
fn target_name(n: &ObjectName) -> Result<TableRef, AnalyzeError> {
    let parts = match n.0.split_last() {
        Some((sqlparser::ast::ObjectNamePart::Identifier(last), rest))
            if last.value == "*" && last.quote_style.is_none() =>
        {
            rest
        }
        _ => &n.0[..],
    };
    table_ref(&ObjectName(parts.to_vec()))
}
