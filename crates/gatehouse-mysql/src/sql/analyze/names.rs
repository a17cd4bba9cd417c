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
    // After a dot MySQL reads any word as a name; before one, never a reserved word.
    if let Some(ObjectNamePart::Identifier(first)) = name.0.first() {
        if reserved(first) && !is_dual(name) {
            return Err(AnalyzeError::Unsupported(format!(
                "`{}` is a reserved word where a table name should be; quote the name",
                first.value
            )));
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

/// MySQL 8's reserved words (DUAL aside), in order. None is ever a table
/// name unquoted, so one in a table's place means sqlparser read a
/// modifier as a name (`UPDATE IGNORE t` as an update of a table `IGNORE`
/// aliased `t`): the statement is refused rather than misread.
#[rustfmt::skip]
const RESERVED: &[&str] = &[
    "ACCESSIBLE", "ADD", "ALL", "ALTER", "ANALYZE", "AND", "AS", "ASC", "ASENSITIVE", "BEFORE",
    "BETWEEN", "BIGINT", "BINARY", "BLOB", "BOTH", "BY", "CALL", "CASCADE", "CASE", "CHANGE",
    "CHAR", "CHARACTER", "CHECK", "COLLATE", "COLUMN", "CONDITION", "CONSTRAINT", "CONTINUE",
    "CONVERT", "CREATE", "CROSS", "CUBE", "CUME_DIST", "CURRENT_DATE", "CURRENT_TIME",
    "CURRENT_TIMESTAMP", "CURRENT_USER", "CURSOR", "DATABASE", "DATABASES", "DAY_HOUR",
    "DAY_MICROSECOND", "DAY_MINUTE", "DAY_SECOND", "DEC", "DECIMAL", "DECLARE", "DEFAULT",
    "DELAYED", "DELETE", "DENSE_RANK", "DESC", "DESCRIBE", "DETERMINISTIC", "DISTINCT",
    "DISTINCTROW", "DIV", "DOUBLE", "DROP", "EACH", "ELSE", "ELSEIF", "EMPTY", "ENCLOSED",
    "ESCAPED", "EXCEPT", "EXISTS", "EXIT", "EXPLAIN", "FALSE", "FETCH", "FIRST_VALUE", "FLOAT",
    "FLOAT4", "FLOAT8", "FOR", "FORCE", "FOREIGN", "FROM", "FULLTEXT", "FUNCTION", "GENERATED",
    "GET", "GRANT", "GROUP", "GROUPING", "GROUPS", "HAVING", "HIGH_PRIORITY", "HOUR_MICROSECOND",
    "HOUR_MINUTE", "HOUR_SECOND", "IF", "IGNORE", "IN", "INDEX", "INFILE", "INNER", "INOUT",
    "INSENSITIVE", "INSERT", "INT", "INT1", "INT2", "INT3", "INT4", "INT8", "INTEGER", "INTERSECT",
    "INTERVAL", "INTO", "IO_AFTER_GTIDS", "IO_BEFORE_GTIDS", "IS", "ITERATE", "JOIN", "JSON_TABLE",
    "KEY", "KEYS", "KILL", "LAG", "LAST_VALUE", "LATERAL", "LEAD", "LEADING", "LEAVE", "LEFT",
    "LIKE", "LIMIT", "LINEAR", "LINES", "LOAD", "LOCALTIME", "LOCALTIMESTAMP", "LOCK", "LONG",
    "LONGBLOB", "LONGTEXT", "LOOP", "LOW_PRIORITY", "MASTER_BIND", "MASTER_SSL_VERIFY_SERVER_CERT",
    "MATCH", "MAXVALUE", "MEDIUMBLOB", "MEDIUMINT", "MEDIUMTEXT", "MIDDLEINT",
    "MINUTE_MICROSECOND", "MINUTE_SECOND", "MOD", "MODIFIES", "NATURAL", "NOT",
    "NO_WRITE_TO_BINLOG", "NTH_VALUE", "NTILE", "NULL", "NUMERIC", "OF", "ON", "OPTIMIZE",
    "OPTIMIZER_COSTS", "OPTION", "OPTIONALLY", "OR", "ORDER", "OUT", "OUTER", "OUTFILE", "OVER",
    "PARTITION", "PERCENT_RANK", "PRECISION", "PRIMARY", "PROCEDURE", "PURGE", "RANGE", "RANK",
    "READ", "READS", "READ_WRITE", "REAL", "RECURSIVE", "REFERENCES", "REGEXP", "RELEASE",
    "RENAME", "REPEAT", "REPLACE", "REQUIRE", "RESIGNAL", "RESTRICT", "RETURN", "REVOKE", "RIGHT",
    "RLIKE", "ROW", "ROWS", "ROW_NUMBER", "SCHEMA", "SCHEMAS", "SECOND_MICROSECOND", "SELECT",
    "SENSITIVE", "SEPARATOR", "SET", "SHOW", "SIGNAL", "SMALLINT", "SPATIAL", "SPECIFIC", "SQL",
    "SQLEXCEPTION", "SQLSTATE", "SQLWARNING", "SQL_BIG_RESULT", "SQL_CALC_FOUND_ROWS",
    "SQL_SMALL_RESULT", "SSL", "STARTING", "STORED", "STRAIGHT_JOIN", "SYSTEM", "TABLE",
    "TERMINATED", "THEN", "TINYBLOB", "TINYINT", "TINYTEXT", "TO", "TRAILING", "TRIGGER", "TRUE",
    "UNDO", "UNION", "UNIQUE", "UNLOCK", "UNSIGNED", "UPDATE", "USAGE", "USE", "USING", "UTC_DATE",
    "UTC_TIME", "UTC_TIMESTAMP", "VALUES", "VARBINARY", "VARCHAR", "VARCHARACTER", "VARYING",
    "VIRTUAL", "WHEN", "WHERE", "WHILE", "WINDOW", "WITH", "WRITE", "XOR", "YEAR_MONTH",
    "ZEROFILL",
];

fn reserved(i: &Ident) -> bool {
    i.quote_style.is_none()
        && RESERVED
            .binary_search(&i.value.to_ascii_uppercase().as_str())
            .is_ok()
}
