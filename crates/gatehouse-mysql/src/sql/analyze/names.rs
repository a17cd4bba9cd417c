//! Names in sqlparser's tree as the analysis reports them: tables as
//! written (`db.t`; MySQL table and database names are case-sensitive on
//! Linux), functions in lower case (the server reads them case-insensitively).

use super::AnalyzeError;
use gatehouse_sql::TableRef;
use sqlparser::ast::{Expr, Ident, ObjectName, ObjectNamePart};

/// Whether a bare name is a column: not a `@variable`, and not `DEFAULT`
/// (in VALUES and SET, the column's or variable's default).
pub(super) fn is_column(i: &Ident) -> bool {
    let default = i.quote_style.is_none() && i.value.eq_ignore_ascii_case("default");
    !i.value.starts_with('@') && !default
}

/// `DUAL` unquoted is MySQL's one-row dummy table, not a table of the database.
pub(super) fn is_dual(name: &ObjectName) -> bool {
    matches!(name.0.as_slice(),
        [ObjectNamePart::Identifier(i)] if i.quote_style.is_none() && i.value.eq_ignore_ascii_case("dual"))
}

/// `a` or `t.a` (not a `@variable`).
pub(super) fn is_plain_column(e: &Expr) -> bool {
    match e {
        Expr::Identifier(i) => !i.value.starts_with('@'),
        Expr::CompoundIdentifier(parts) => parts.first().is_some_and(|p| !p.value.starts_with('@')),
        _ => false,
    }
}

pub(super) fn last_part(n: &ObjectName) -> Option<&Ident> {
    match n.0.last()? {
        ObjectNamePart::Identifier(i) => Some(i),
        ObjectNamePart::Function(_) => None,
    }
}

/// A function's name in lower case, qualified as written.
pub(super) fn function_name(name: &ObjectName) -> Result<String, AnalyzeError> {
    let mut parts = Vec::with_capacity(name.0.len());
    for p in &name.0 {
        match p {
            ObjectNamePart::Identifier(i) => parts.push(i.value.to_lowercase()),
            ObjectNamePart::Function(_) => return Err(not_mysql("a computed name")),
        }
    }
    Ok(parts.join("."))
}

/// A table name: `t` or `db.t`, kept as written.
pub(super) fn table_ref(name: &ObjectName) -> Result<TableRef, AnalyzeError> {
    let mut parts = Vec::with_capacity(2);
    for p in &name.0 {
        match p {
            ObjectNamePart::Identifier(i) => parts.push(i.value.clone()),
            ObjectNamePart::Function(_) => return Err(not_mysql("a computed name")),
        }
    }
    match parts.len() {
        1 => Ok(TableRef {
            schema: None,
            name: parts.remove(0),
        }),
        2 => {
            let name = parts.remove(1);
            Ok(TableRef {
                schema: Some(parts.remove(0)),
                name,
            })
        }
        _ => Err(AnalyzeError::Unsupported(format!(
            "the name {name} has more parts than database.table"
        ))),
    }
}

pub(super) fn not_mysql(what: &str) -> AnalyzeError {
    AnalyzeError::Unsupported(format!(
        "{what} is not MySQL syntax and is not supported through the gateway"
    ))
}
