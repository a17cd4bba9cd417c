//! What a `COPY … TO` sends: which table's columns, in which format. Column
//! masking needs this to find a rule's column among a COPY row's fields.

use crate::tree::Tree as Value;
use crate::walk::{field, node_of, str_field};
use crate::TableRef;
use serde::{Deserialize, Serialize};

/// The data format of a COPY.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CopyFormat {
    /// Tab-separated, backslash escapes (the default).
    Text,
    /// Comma-separated values.
    Csv,
    /// PostgreSQL's binary COPY format.
    Binary,
}

/// A `COPY … TO` statement's output, as the options give it. Option values
/// are as written; the server rejects invalid ones before sending a row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyOut {
    /// The table copied; `None` for `COPY (query) TO`.
    pub table: Option<TableRef>,
    /// The column list, when given.
    pub columns: Vec<String>,
    /// Data format.
    pub format: CopyFormat,
    /// `DELIMITER`, when given.
    pub delimiter: Option<String>,
    /// `NULL`, when given.
    pub null: Option<String>,
    /// `QUOTE` (CSV), when given.
    pub quote: Option<String>,
    /// `ESCAPE` (CSV), when given.
    pub escape: Option<String>,
    /// The first row is a header line of column names.
    pub header: bool,
    /// `ENCODING`, when given (the output is then in that encoding).
    pub encoding: Option<String>,
}

fn option_text(arg: Option<&Value>) -> Option<String> {
    let (ty, b) = node_of(arg?)?;
    Some(match ty {
        "String" => str_field(b, "sval").to_string(),
        "Boolean" => b
            .get("boolval")
            .and_then(Value::as_bool)
            .unwrap_or(false)
            .to_string(),
        "Integer" => b
            .get("ival")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            .to_string(),
        _ => return None,
    })
}

/// The output of a `COPY … TO` node, `None` for `COPY … FROM`.
pub(crate) fn copy_out(b: &Value) -> Option<CopyOut> {
    if b.get("is_from").and_then(Value::as_bool).unwrap_or(false) {
        return None;
    }
    let table = field(b, "relation").and_then(|rv| {
        let name = str_field(rv, "relname");
        let schema = str_field(rv, "schemaname");
        (!name.is_empty()).then(|| TableRef {
            schema: (!schema.is_empty()).then(|| schema.to_string()),
            name: name.to_string(),
        })
    });
    let columns = field(b, "attlist")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|n| match node_of(n) {
                    Some(("String", s)) => Some(str_field(s, "sval").to_string()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let mut out = CopyOut {
        table,
        columns,
        format: CopyFormat::Text,
        delimiter: None,
        null: None,
        quote: None,
        escape: None,
        header: false,
        encoding: None,
    };
    for opt in field(b, "options")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
    {
        let Some(("DefElem", d)) = node_of(opt) else {
            continue;
        };
        let arg = option_text(field(d, "arg"));
        match str_field(d, "defname") {
            "format" => {
                out.format = match arg.as_deref().map(str::to_ascii_lowercase).as_deref() {
                    Some("csv") => CopyFormat::Csv,
                    Some("binary") => CopyFormat::Binary,
                    _ => CopyFormat::Text,
                }
            }
            "delimiter" => out.delimiter = arg,
            "null" => out.null = arg,
            "quote" => out.quote = arg,
            "escape" => out.escape = arg,
            "encoding" => out.encoding = arg,
            "header" => {
                // `HEADER` alone is true; otherwise a boolean spelled any way PostgreSQL accepts.
                out.header = match arg.as_deref().map(str::to_ascii_lowercase).as_deref() {
                    None => true,
                    Some(v) => matches!(v, "true" | "on" | "1" | "yes" | "t" | "y"),
                }
            }
            _ => {}
        }
    }
    Some(out)
}
