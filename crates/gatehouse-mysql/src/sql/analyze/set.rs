//! `SET`: session variables, user variables, the role, the character set
//! and the transaction characteristics.
//!
//! Three things decide more than the kind. A global change (`SET GLOBAL`,
//! `@@global.`, `PERSIST`) changes the server for everyone: `admin`. A
//! change of `sql_mode` changes how the server reads every later statement
//! (`ANSI_QUOTES`, `NO_BACKSLASH_ESCAPES`), so the gateway's lexer must
//! follow it: [`SqlModeChange`]. And the client character set must be one
//! in which a backslash byte is always a backslash: in gbk, sjis, big5 or
//! cp932 the server reads `0xbf5c` as one character where the gateway sees
//! an escaping backslash, so those are refused.

use super::scan::Tokens;
use super::walk::{Sink, Walk};
use super::{AnalyzeError, Facts, SqlModeChange};
use gatehouse_sql::{ActionKind, SettingChange, SettingValue};
use sqlparser::ast::{
    ContextModifier, Expr, ObjectName, ObjectNamePart, Set, UnaryOperator, Value,
};

/// Client character sets the gateway reads exactly as the server does.
const CHARSETS: &[&str] = &["utf8", "utf8mb3", "utf8mb4", "latin1", "ascii", "binary"];

/// Variables naming the character set statements or results travel in.
const CHARSET_VARIABLES: &[&str] = &[
    "character_set_client",
    "character_set_connection",
    "character_set_results",
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    Session,
    Global,
    User,
}

impl From<&ContextModifier> for Scope {
    fn from(m: &ContextModifier) -> Self {
        match m {
            ContextModifier::Global => Scope::Global,
            ContextModifier::Session | ContextModifier::Local => Scope::Session,
        }
    }
}

/// The facts of a parsed `SET`.
pub(super) fn set(
    s: &Set,
    tokens: &Tokens<'_>,
    f: &mut Facts,
    w: &mut Walk,
) -> Result<(), AnalyzeError> {
    f.kind = ActionKind::Set;
    f.operation = "variable_set".into();
    match s {
        Set::SingleAssignment {
            scope,
            hivevar: false,
            variable,
            values,
        } => {
            let scope = scope.as_ref().map_or(Scope::Session, Scope::from);
            match values.as_slice() {
                [value] => assign(f, w, scope, variable, value)?,
                _ => return Err(not_mysql()),
            }
        }
        Set::MultipleAssignments { assignments } => {
            // A modifier holds for the assignments after it that have none.
            let mut scope = Scope::Session;
            for a in assignments {
                if let Some(m) = &a.scope {
                    scope = Scope::from(m);
                }
                assign(f, w, scope, &a.name, &a.value)?;
            }
        }
        Set::SetRole {
            context_modifier: None,
            role_name,
        } => {
            f.kind = ActionKind::Dcl;
            f.flags.changes_role = true;
            let value = match role_name {
                Some(r) if r.quote_style.is_none() && r.value.eq_ignore_ascii_case("default") => {
                    SettingValue::Default
                }
                Some(r) => SettingValue::Literal(r.value.clone()),
                None => SettingValue::Literal("NONE".into()),
            };
            f.settings.push(SettingChange {
                name: Some("role".into()),
                value,
            });
        }
        Set::SetNames { charset_name, .. } => {
            names(f, &charset_name.value, true)?;
        }
        Set::SetNamesDefault {} => {
            return Err(AnalyzeError::Unsupported(
                "SET NAMES DEFAULT is refused: the gateway cannot tell which character set the \
                 server's default is; name one (utf8mb4)"
                    .into(),
            ))
        }
        Set::SetTransaction {
            snapshot: None,
            session: false,
            ..
        } => {
            // sqlparser drops GLOBAL here: read it from the keywords.
            if tokens.is_any(1, &["GLOBAL", "PERSIST", "PERSIST_ONLY"]) {
                f.kind = ActionKind::Admin;
            } else {
                f.kind = ActionKind::Transaction;
            }
            f.operation = "set_transaction".into();
        }
        _ => return Err(not_mysql()),
    }
    Ok(())
}

fn not_mysql() -> AnalyzeError {
    AnalyzeError::Unsupported("this SET form is not supported through the gateway".into())
}

/// `SET NAMES x` and `SET CHARACTER SET x` (`names`: the first, which
/// also sets the connection's character set; the second takes the
/// database's for it).
pub(super) fn names(f: &mut Facts, charset: &str, names: bool) -> Result<(), AnalyzeError> {
    let statement = if names {
        "SET NAMES"
    } else {
        "SET CHARACTER SET"
    };
    check_charset(charset, statement)?;
    f.kind = ActionKind::Set;
    f.operation = "variable_set".into();
    for v in CHARSET_VARIABLES {
        if names || *v != "character_set_connection" {
            f.settings.push(SettingChange {
                name: Some((*v).into()),
                value: SettingValue::Literal(charset.to_string()),
            });
        }
    }
    Ok(())
}

/// Refuses a character set the gateway cannot read statements in.
pub(super) fn check_charset(charset: &str, statement: &str) -> Result<(), AnalyzeError> {
    if CHARSETS.iter().any(|c| c.eq_ignore_ascii_case(charset)) {
        return Ok(());
    }
    Err(AnalyzeError::Unsupported(format!(
        "{statement} {charset} is refused: in a character set other than {} the server may read \
         a backslash or quote byte inside a multi-byte character differently from the gateway",
        CHARSETS.join(", ")
    )))
}

fn assign(
    f: &mut Facts,
    w: &mut Walk,
    keyword_scope: Scope,
    name: &ObjectName,
    value: &Expr,
) -> Result<(), AnalyzeError> {
    let mut parts = Vec::with_capacity(name.0.len());
    for p in &name.0 {
        match p {
            ObjectNamePart::Identifier(i) => parts.push(i.value.to_lowercase()),
            ObjectNamePart::Function(_) => return Err(not_mysql()),
        }
    }
    let (scope, var) = resolve(keyword_scope, &parts);
    // A bare word is a value (`ON`, `utf8mb4`, `TRADITIONAL`), not a column;
    // anything else is computed and goes into the variable.
    let sink = if matches!(value, Expr::Identifier(_)) {
        Sink::Filter
    } else {
        Sink::Derived
    };
    w.sink_expr(value, sink);
    let setting = setting_value(value, scope != Scope::User);
    if scope != Scope::User {
        if var == "password" {
            // `SET PASSWORD = …` among other assignments.
            f.kind = f.kind.max(ActionKind::Dcl);
            f.operation = "alter_role".into();
            f.secret = true;
            return Ok(());
        }
        // The statements' character set; the results' may be anything the
        // client reads (`NULL`: no conversion), as the column definitions say.
        if matches!(
            var.as_str(),
            "character_set_client" | "character_set_connection" | "collation_connection"
        ) {
            let statement = format!("SET {var} =");
            match &setting {
                // A collation names its character set first (`gbk_bin`).
                SettingValue::Literal(v) if var == "collation_connection" => {
                    let charset = if v.eq_ignore_ascii_case("binary") {
                        v.as_str()
                    } else {
                        v.split('_').next().unwrap_or(v)
                    };
                    check_charset(charset, &statement)?;
                }
                SettingValue::Literal(v) => check_charset(v, &statement)?,
                _ => {
                    return Err(AnalyzeError::Unsupported(format!(
                        "{statement} … is refused unless it names the character set: the gateway \
                         must know it to read later statements as the server does"
                    )))
                }
            }
        }
    }
    match scope {
        Scope::Global => {
            // The whole server, every session: administration.
            f.kind = f.kind.max(ActionKind::Admin);
        }
        Scope::Session => {
            if var == "sql_mode" {
                f.sql_mode = Some(sql_mode(value));
            }
            f.settings.push(SettingChange {
                name: Some(var),
                value: setting,
            });
        }
        Scope::User => f.settings.push(SettingChange {
            name: Some(var),
            value: setting,
        }),
    }
    Ok(())
}

/// The scope and name of an assigned variable: `@u` is a user variable,
/// `@@x` and `@@session.x` the session's, `@@global.x` and `@@persist.x`
/// the server's; a plain name takes the statement's keyword.
fn resolve(keyword_scope: Scope, parts: &[String]) -> (Scope, String) {
    match parts {
        [one] if one.starts_with("@@") => (Scope::Session, one[2..].to_string()),
        [one] if one.starts_with('@') => (Scope::User, one.clone()),
        [first, rest @ ..] if first.starts_with("@@") => {
            let scope = match &first[2..] {
                "session" | "local" => Scope::Session,
                // global, persist, persist_only, and key caches
                // (`@@cache.key_buffer_size`), which are global only.
                _ => Scope::Global,
            };
            let name = if scope == Scope::Session
                || matches!(&first[2..], "global" | "persist" | "persist_only")
            {
                rest.join(".")
            } else {
                parts.join(".").trim_start_matches('@').to_string()
            };
            (scope, name)
        }
        _ => (keyword_scope, parts.join(".")),
    }
}

/// A value as written: a literal, a bare word (`ON`, for a system
/// variable), `DEFAULT`, or anything else (known only when it runs).
fn setting_value(e: &Expr, system: bool) -> SettingValue {
    match e {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s)
            | Value::DoubleQuotedString(s)
            | Value::NationalStringLiteral(s)
            | Value::Number(s, _) => SettingValue::Literal(s.clone()),
            Value::Boolean(b) => SettingValue::Literal(b.to_string()),
            _ => SettingValue::Unknown,
        },
        Expr::Identifier(i)
            if i.quote_style.is_none() && i.value.eq_ignore_ascii_case("default") =>
        {
            SettingValue::Default
        }
        // A word (`ON`, `utf8mb4`) for a system variable; `@x` is known only when run.
        Expr::Identifier(i) if system && !i.value.starts_with('@') => {
            SettingValue::Literal(i.value.clone())
        }
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => match &**expr {
            Expr::Value(v) => match &v.value {
                Value::Number(n, _) => SettingValue::Literal(format!("-{n}")),
                _ => SettingValue::Unknown,
            },
            _ => SettingValue::Unknown,
        },
        _ => SettingValue::Unknown,
    }
}

/// The `sql_mode` a value sets: a string or word as written, the default,
/// or unknown (a number is a bit mask, an expression known only when run).
fn sql_mode(e: &Expr) -> SqlModeChange {
    match setting_value(e, true) {
        SettingValue::Default => SqlModeChange::Default,
        SettingValue::Literal(s) if !matches!(e, Expr::Value(v) if matches!(v.value, Value::Number(..))) => {
            SqlModeChange::Literal(s)
        }
        _ => SqlModeChange::Unknown,
    }
}
