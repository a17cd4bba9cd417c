//! Session settings a statement changes: `SET`, `RESET` and calls to
//! `set_config`. The gateway must know them because some settings change how
//! the server reads the statements that follow (`client_encoding`,
//! `standard_conforming_strings`) or what their names mean (`search_path`).

use crate::tree::Tree as Value;
use crate::walk::{field, node_of, str_field};
use serde::{Deserialize, Serialize};

/// One setting a statement changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingChange {
    /// The setting's name in lower case; `None` when it is computed at run
    /// time (`set_config(some_expression, …)`), so nobody can tell it in advance.
    pub name: Option<String>,
    /// What it is set to.
    pub value: SettingValue,
}

/// The value a setting is changed to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SettingValue {
    /// One string or number literal.
    Literal(String),
    /// Several literals (`SET search_path = a, "B"`), as the parser read them
    /// (unquoted names lower-cased, quoted ones as written).
    List(Vec<String>),
    /// Back to the session's default (`RESET`, `SET … TO DEFAULT`, `SET … FROM CURRENT`):
    /// the value the session started with.
    Default,
    /// Anything else: several values, or an expression known only at run time.
    Unknown,
}

/// `VariableSetKind` in libpg_query's protobuf.
const VAR_SET_VALUE: i64 = 1;
const VAR_SET_DEFAULT: i64 = 2;
const VAR_SET_CURRENT: i64 = 3;
const VAR_RESET: i64 = 5;
const VAR_RESET_ALL: i64 = 6;

/// What a `VariableSetStmt` changes (`SET TRANSACTION …` and friends change no
/// session setting and give `None`; `RESET ALL` resets everything to the
/// session's defaults, which also gives `None`).
pub(crate) fn from_variable_set(b: &Value) -> Option<SettingChange> {
    let name = str_field(b, "name");
    let kind = b.get("kind").and_then(Value::as_i64).unwrap_or(0);
    if name.is_empty() || kind == VAR_RESET_ALL {
        return None;
    }
    let value = match kind {
        // search_path takes each argument as one schema name, as written
        // (`SET search_path = "Payroll", 'a, b'`): a list even of one.
        VAR_SET_VALUE if name.eq_ignore_ascii_case("search_path") => {
            match literal_list(field(b, "args")) {
                SettingValue::Literal(v) => SettingValue::List(vec![v]),
                other => other,
            }
        }
        VAR_SET_VALUE => literal_list(field(b, "args")),
        VAR_SET_DEFAULT | VAR_SET_CURRENT | VAR_RESET => SettingValue::Default,
        // SET TRANSACTION, SET SESSION CHARACTERISTICS: no session setting by name.
        _ => return None,
    };
    Some(SettingChange {
        name: Some(name.to_ascii_lowercase()),
        value,
    })
}

/// Whether a function name is `set_config` (however qualified).
pub(crate) fn is_set_config(name: &str) -> bool {
    name == "set_config" || name == "pg_catalog.set_config"
}

/// What a call to `set_config(name, value, is_local)` changes.
pub(crate) fn from_set_config(call: &Value) -> SettingChange {
    let args: &[Value] = call
        .get("args")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let name = args
        .first()
        .and_then(literal)
        .map(|n| n.to_ascii_lowercase());
    let value = match args.get(1).and_then(literal) {
        Some(v) => SettingValue::Literal(v),
        None => SettingValue::Unknown,
    };
    SettingChange { name, value }
}

/// A `SET`'s argument list: one literal, several, or something else.
fn literal_list(args: Option<&Value>) -> SettingValue {
    let args: &[Value] = args
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let values: Option<Vec<String>> = args.iter().map(literal).collect();
    match values {
        Some(mut v) if v.len() == 1 => SettingValue::Literal(v.remove(0)),
        Some(v) if !v.is_empty() => SettingValue::List(v),
        _ => SettingValue::Unknown,
    }
}

/// A string or number constant (also through a cast: `'x'::text`).
fn literal(v: &Value) -> Option<String> {
    let (ty, c) = node_of(v)?;
    match ty {
        "AConst" => {
            let val = c.get("val")?;
            if let Some(s) = val.pointer("/Sval/sval").and_then(Value::as_str) {
                return Some(s.to_string());
            }
            val.pointer("/Ival/ival")
                .map(|v| v.to_string())
                .or_else(|| val.pointer("/Ival").map(|_| "0".to_string()))
                .or_else(|| {
                    val.pointer("/Fval/fval")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
        }
        "TypeCast" => literal(c.get("arg")?),
        _ => None,
    }
}
