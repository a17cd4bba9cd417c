//! Whether a WHERE clause bounds the rows a DELETE or UPDATE changes.
//!
//! A WHERE that is always true changes every row as surely as no WHERE at
//! all, so it is reported the same way (`has_where: false`): one that names
//! no column of the target (`WHERE true`, `WHERE 1 = 1`, `WHERE now() > …`),
//! one whose OR has such an arm (`WHERE x IS NOT NULL OR true`), and one
//! comparing an expression with itself (`WHERE id = id`, `NOT (id <> id)`,
//! `id BETWEEN id AND id`). What it cannot show to be always true counts as
//! bounding, `x IS NOT NULL` included (docs/policy.md lists the shapes; a
//! cap on rows changed answers the rest).

use crate::tree::Tree as Value;
use crate::walk::{field, node_of, str_field};

/// `BoolExprType` in libpg_query's protobuf.
const AND_EXPR: i64 = 1;
const OR_EXPR: i64 = 2;
const NOT_EXPR: i64 = 3;
/// `A_Expr_Kind`: `BETWEEN` and `BETWEEN SYMMETRIC`.
const AEXPR_BETWEEN: i64 = 11;
const AEXPR_BETWEEN_SYM: i64 = 13;
/// `A_Expr_Kind`: a plain operator, and `IS NOT DISTINCT FROM`.
const AEXPR_OP: i64 = 1;
const AEXPR_DISTINCT: i64 = 4;
const AEXPR_NOT_DISTINCT: i64 = 5;
/// `BoolTestType`: `IS TRUE`, `IS NOT FALSE`.
const IS_TRUE: i64 = 1;
const IS_NOT_FALSE: i64 = 4;

/// The target of a DELETE or UPDATE as its WHERE may name it.
pub(crate) struct Target<'a> {
    /// Its table name and alias.
    pub(crate) names: &'a [&'a str],
    /// Other tables are joined (`USING`, `FROM`): an unqualified column may
    /// be theirs, so only qualified ones count as the target's.
    pub(crate) joined: bool,
}

/// Whether `where_clause` bounds the rows of `target`.
pub(crate) fn restricts(where_clause: Option<&Value>, target: &Target<'_>) -> bool {
    let Some(w) = where_clause else {
        return false;
    };
    if let Some(("CurrentOfExpr", _)) = node_of(w) {
        return true;
    }
    refers_to_target(w, target, false) && !maybe_always_true(w, target)
}

/// Whether an expression may be true for every row.
fn maybe_always_true(v: &Value, names: &Target<'_>) -> bool {
    if !refers_to_target(v, names, false) {
        // Nothing of the row decides it: true for all rows or for none.
        return true;
    }
    let Some((ty, b)) = node_of(v) else {
        return false;
    };
    let args = || {
        field(b, "args")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
    };
    match ty {
        "BoolExpr" => match b.get("boolop").and_then(Value::as_i64) {
            Some(OR_EXPR) => args().any(|a| maybe_always_true(a, names)),
            Some(AND_EXPR) => args().all(|a| maybe_always_true(a, names)),
            Some(NOT_EXPR) => args().all(|a| always_false(a, names)),
            _ => false,
        },
        "AExpr" => {
            let kind = b.get("kind").and_then(Value::as_i64);
            let (l, r) = (field(b, "lexpr"), field(b, "rexpr"));
            match kind {
                Some(AEXPR_OP) => {
                    matches!(operator(b), "=" | "<=" | ">=") && same_expression(l, r, names)
                }
                Some(AEXPR_NOT_DISTINCT) => same_expression(l, r, names),
                Some(AEXPR_BETWEEN | AEXPR_BETWEEN_SYM) => {
                    let bounds = r
                        .and_then(node_of)
                        .filter(|(t, _)| *t == "List")
                        .and_then(|(_, list)| field(list, "items"))
                        .and_then(Value::as_array);
                    bounds.is_some_and(|items| {
                        items.iter().all(|x| same_expression(l, Some(x), names))
                    })
                }
                _ => false,
            }
        }
        "BooleanTest" => {
            matches!(
                b.get("booltesttype").and_then(Value::as_i64),
                Some(IS_TRUE | IS_NOT_FALSE)
            ) && field(b, "arg").is_some_and(|a| maybe_always_true(a, names))
        }
        _ => false,
    }
}

/// Whether an expression is false for every row: an expression compared
/// with itself by `<>`, `<`, `>` or `IS DISTINCT FROM`.
fn always_false(v: &Value, names: &Target<'_>) -> bool {
    let Some(("AExpr", b)) = node_of(v) else {
        return false;
    };
    let (l, r) = (field(b, "lexpr"), field(b, "rexpr"));
    match b.get("kind").and_then(Value::as_i64) {
        Some(AEXPR_OP) => {
            matches!(operator(b), "<>" | "!=" | "<" | ">") && same_expression(l, r, names)
        }
        Some(AEXPR_DISTINCT) => same_expression(l, r, names),
        _ => false,
    }
}

/// An operator expression's operator (`=`, `<>`…).
fn operator(b: &Value) -> &str {
    field(b, "name")
        .and_then(Value::as_array)
        .and_then(|n| n.last())
        .and_then(node_of)
        .map(|(_, s)| str_field(s, "sval"))
        .unwrap_or("")
}

/// Two expressions written the same (source positions aside), a column of
/// the target counting the same qualified or not (`orders.id = id`).
fn same_expression(a: Option<&Value>, b: Option<&Value>, target: &Target<'_>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => {
            let (ca, cb) = (target_column(a, target), target_column(b, target));
            match (ca, cb) {
                (Some(x), Some(y)) => x == y,
                _ => same(a, b),
            }
        }
        _ => false,
    }
}

/// The name of the target's column `v` is, if it is one.
fn target_column<'v>(v: &'v Value, target: &Target<'_>) -> Option<&'v str> {
    let ("ColumnRef", c) = node_of(v)? else {
        return None;
    };
    let parts: Vec<&str> = field(c, "fields")?
        .as_array()?
        .iter()
        .filter_map(node_of)
        .filter(|(t, _)| *t == "String")
        .map(|(_, s)| str_field(s, "sval"))
        .collect();
    match parts.as_slice() {
        [name] if !target.joined => Some(name),
        [.., q, name] if target.names.contains(q) => Some(name),
        _ => None,
    }
}

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut fx = x.iter().filter(|(k, _)| k != "location");
            let mut fy = y.iter().filter(|(k, _)| k != "location");
            loop {
                match (fx.next(), fy.next()) {
                    (None, None) => return true,
                    (Some((kx, vx)), Some((ky, vy))) if kx == ky && same(vx, vy) => {}
                    _ => return false,
                }
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        _ => a == b,
    }
}

/// Whether an expression reads a column of the target: one qualified with
/// its name or alias, or an unqualified one outside any subquery (inside one
/// it more likely belongs to the subquery's own tables).
fn refers_to_target(v: &Value, names: &Target<'_>, in_subquery: bool) -> bool {
    match v {
        Value::Array(items) => items
            .iter()
            .any(|x| refers_to_target(x, names, in_subquery)),
        Value::Object(fields) => fields.iter().any(|(k, child)| match k.as_ref() {
            "ColumnRef" => column_of_target(child, names, in_subquery),
            "SubLink" => {
                field(child, "testexpr").is_some_and(|t| refers_to_target(t, names, in_subquery))
                    || field(child, "subselect").is_some_and(|s| refers_to_target(s, names, true))
            }
            _ => refers_to_target(child, names, in_subquery),
        }),
        _ => false,
    }
}

fn column_of_target(c: &Value, target: &Target<'_>, in_subquery: bool) -> bool {
    let parts: Vec<&str> = field(c, "fields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(node_of)
        .map(|(ty, s)| {
            if ty == "String" {
                str_field(s, "sval")
            } else {
                "*"
            }
        })
        .collect();
    match parts.as_slice() {
        [_] => !in_subquery && !target.joined,
        [.., qualifier, _] => target.names.contains(qualifier),
        [] => false,
    }
}
