//! Whether a WHERE clause bounds the rows a DELETE or UPDATE changes.
//!
//! A WHERE that is always true changes every row as surely as no WHERE at
//! all, so it is reported the same way (`has_where: false`): one that names
//! no column of the target (`WHERE true`, `WHERE 1 = 1`, `WHERE now() > …`),
//! one whose OR has such an arm (`WHERE x IS NOT NULL OR true`), and one
//! comparing an expression with itself (`WHERE id = id`). The check leans to
//! "unbounded": what it cannot show restricts the target is reported as not
//! restricting it (docs/policy.md lists the shapes).

use crate::tree::Tree as Value;
use crate::walk::{field, node_of, str_field};

/// `BoolExprType` in libpg_query's protobuf.
const AND_EXPR: i64 = 1;
const OR_EXPR: i64 = 2;
/// `A_Expr_Kind`: a plain operator, and `IS NOT DISTINCT FROM`.
const AEXPR_OP: i64 = 1;
const AEXPR_NOT_DISTINCT: i64 = 5;
/// `BoolTestType`: `IS TRUE`, `IS NOT FALSE`.
const IS_TRUE: i64 = 1;
const IS_NOT_FALSE: i64 = 4;

/// Whether `where_clause` bounds the rows of the target known by `names`
/// (its table name and alias).
pub(crate) fn restricts(where_clause: Option<&Value>, names: &[&str]) -> bool {
    let Some(w) = where_clause else {
        return false;
    };
    if let Some(("CurrentOfExpr", _)) = node_of(w) {
        return true;
    }
    refers_to_target(w, names, false) && !maybe_always_true(w, names)
}

/// Whether an expression may be true for every row.
fn maybe_always_true(v: &Value, names: &[&str]) -> bool {
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
            _ => false,
        },
        "AExpr" => {
            let kind = b.get("kind").and_then(Value::as_i64);
            let op = field(b, "name")
                .and_then(Value::as_array)
                .and_then(|n| n.last())
                .and_then(node_of)
                .map(|(_, s)| str_field(s, "sval"))
                .unwrap_or("");
            let reflexive = (kind == Some(AEXPR_OP) && matches!(op, "=" | "<=" | ">="))
                || kind == Some(AEXPR_NOT_DISTINCT);
            reflexive && same_expression(field(b, "lexpr"), field(b, "rexpr"))
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

/// Two expressions written the same (source positions aside).
fn same_expression(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => same(a, b),
        _ => false,
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
fn refers_to_target(v: &Value, names: &[&str], in_subquery: bool) -> bool {
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

fn column_of_target(c: &Value, names: &[&str], in_subquery: bool) -> bool {
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
        [_] => !in_subquery,
        [.., qualifier, _] => names.contains(qualifier),
        [] => false,
    }
}
