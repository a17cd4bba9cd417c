//! Whether a WHERE clause bounds the rows a DELETE or UPDATE changes, by the
//! same rules as gatehouse-sql's `bounds.rs` for PostgreSQL, so that
//! `has_where` means the same for both (docs/policy.md lists the shapes).
//!
//! A WHERE that is always true changes every row as surely as none at all,
//! so it counts as no WHERE: one that names no column of the target
//! (`WHERE 1`, `WHERE true`, `WHERE now() > …`), one with an OR arm like
//! that, one comparing an expression with itself (`id = id`, `id <=> id`,
//! `NOT (id <> id)`, `id BETWEEN id AND id`), or `… IS TRUE` of any of
//! them. What cannot be shown always true bounds.
//!
//! The rules recurse only along AND, OR, NOT and parentheses; each other
//! subtree is searched for target columns once, so the work stays linear
//! in the clause (times the parser's bounded prefix nesting).

use sqlparser::ast::{BinaryOperator, Expr, Query, UnaryOperator, Visit, Visitor};
use std::ops::ControlFlow;

/// The target of a DELETE or UPDATE as its WHERE may name it.
pub(super) struct Target<'a> {
    /// Its table name and alias.
    pub(super) names: &'a [&'a str],
    /// Other tables are joined: an unqualified column may be theirs, so
    /// only qualified ones count as the target's.
    pub(super) joined: bool,
}

/// Whether `where_clause` bounds the rows of `target`.
pub(super) fn restricts(where_clause: Option<&Expr>, target: &Target<'_>) -> bool {
    let Some(w) = where_clause else {
        return false;
    };
    refers(w, target) && !maybe_always_true(w, target)
}

fn unparen(mut e: &Expr) -> &Expr {
    while let Expr::Nested(inner) = e {
        e = inner;
    }
    e
}

/// Whether an expression may be true for every row.
fn maybe_always_true(e: &Expr, t: &Target<'_>) -> bool {
    match unparen(e) {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Or,
            right,
        } => maybe_always_true(left, t) || maybe_always_true(right, t),
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => maybe_always_true(left, t) && maybe_always_true(right, t),
        Expr::UnaryOp {
            op: UnaryOperator::Not,
            expr,
        } => !refers(expr, t) || always_false(expr, t),
        Expr::IsTrue(inner) | Expr::IsNotFalse(inner) => maybe_always_true(inner, t),
        other => {
            // Nothing of the row decides it: true for all rows or for none.
            if !refers(other, t) {
                return true;
            }
            match other {
                Expr::BinaryOp { left, op, right } => {
                    matches!(
                        op,
                        BinaryOperator::Eq
                            | BinaryOperator::LtEq
                            | BinaryOperator::GtEq
                            | BinaryOperator::Spaceship
                    ) && same(left, right, t)
                }
                Expr::IsNotDistinctFrom(l, r) => same(l, r, t),
                Expr::Between {
                    expr,
                    negated: false,
                    low,
                    high,
                } => same(expr, low, t) && same(expr, high, t),
                _ => false,
            }
        }
    }
}

/// Whether an expression is false for every row: one compared with itself
/// by `<>`, `<`, `>` or `IS DISTINCT FROM`.
fn always_false(e: &Expr, t: &Target<'_>) -> bool {
    match unparen(e) {
        Expr::BinaryOp { left, op, right } => {
            matches!(
                op,
                BinaryOperator::NotEq | BinaryOperator::Lt | BinaryOperator::Gt
            ) && same(left, right, t)
        }
        Expr::IsDistinctFrom(l, r) => same(l, r, t),
        _ => false,
    }
}

/// Two expressions written the same (positions aside), a column of the
/// target counting the same qualified or not (`orders.id = id`).
fn same(a: &Expr, b: &Expr, t: &Target<'_>) -> bool {
    let (a, b) = (unparen(a), unparen(b));
    match (target_column(a, t), target_column(b, t)) {
        (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
        // sqlparser's equality ignores source positions.
        _ => a == b,
    }
}

/// The name of the target's column `e` is, if it is one.
fn target_column<'e>(e: &'e Expr, t: &Target<'_>) -> Option<&'e str> {
    match e {
        Expr::Identifier(i) if !t.joined && !i.value.starts_with('@') => Some(&i.value),
        Expr::CompoundIdentifier(parts) => match parts.as_slice() {
            [.., q, c] if t.names.contains(&q.value.as_str()) => Some(&c.value),
            _ => None,
        },
        _ => None,
    }
}

/// Whether an expression reads a column of the target: one qualified with
/// its name or alias, or an unqualified one outside any subquery (inside
/// one it more likely belongs to the subquery's own tables).
fn refers(e: &Expr, t: &Target<'_>) -> bool {
    let mut finder = Finder {
        target: t,
        subqueries: 0,
    };
    e.visit(&mut finder).is_break()
}

struct Finder<'t, 'a> {
    target: &'t Target<'a>,
    subqueries: usize,
}

impl Visitor for Finder<'_, '_> {
    type Break = ();

    fn pre_visit_query(&mut self, _q: &Query) -> ControlFlow<()> {
        self.subqueries += 1;
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _q: &Query) -> ControlFlow<()> {
        self.subqueries -= 1;
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
        let found = match e {
            Expr::Identifier(i) => {
                !i.value.starts_with('@') && self.subqueries == 0 && !self.target.joined
            }
            Expr::CompoundIdentifier(parts) => match parts.as_slice() {
                [.., q, _] => self.target.names.contains(&q.value.as_str()),
                _ => false,
            },
            _ => false,
        };
        if found {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }
}
