//! Where a statement's column references send their values: the facts
//! column masking needs to tell a column the backend will describe with its
//! origin (which the gateway masks by rule) from a value derived from it
//! (which carries no origin, so no rule could find it).
//!
//! PostgreSQL reports a result column's table and column number when the
//! column is a plain column reference, also through subqueries, CTEs and
//! RETURNING. It reports none for expressions, set operations (UNION…),
//! scalar subqueries, or values written into another table; those are what
//! this module lists as *derived*.

use crate::tree::Tree as Value;
use crate::walk::{field, node_of, str_field};
use crate::TableRef;
use serde::{Deserialize, Serialize};

/// A column reference: `ssn`, `c.ssn`, `c.*` (`column` is `*`), or a bare
/// name that may also be a whole-row reference to a relation (`c`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ColumnUse {
    /// The relation name or alias it is qualified with.
    pub qualifier: Option<String>,
    /// The column name (lower case unless quoted), or `*`.
    pub column: String,
}

/// A relation in a FROM clause or a DML target, by the name the statement
/// refers to it with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelationName {
    /// The table, for a named relation; `None` for a subquery, function or join alias.
    pub table: Option<TableRef>,
    /// Its alias, or its name when it has none.
    pub name: String,
    /// A function in FROM: its alias may stand for a single value rather
    /// than a row (`FROM cast(… AS regclass) s`).
    pub function: bool,
}

/// How a statement's column references carry values (see the module docs).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnFlow {
    /// Relations the statement names.
    pub relations: Vec<RelationName>,
    /// Column references whose values leave the statement without their
    /// origin: in an expression, a set operation, a scalar subquery, a COPY
    /// query, a stored object or a value written into a table.
    pub derived: Vec<ColumnUse>,
    /// Unqualified plain projections (`SELECT ssn …`): a bare name may also be
    /// a whole-row reference to a relation (`SELECT c FROM customers c`).
    pub projected: Vec<String>,
    /// Plain projections under another name in a subquery or CTE (`ssn AS x`):
    /// the column, and the name an outer query knows it by.
    pub renamed: Vec<(ColumnUse, String)>,
    /// Names given by column alias lists (`AS s(a, b)`, `WITH c(a) AS …`),
    /// which rename columns by position.
    pub alias_columns: Vec<String>,
}

/// Where a select's output goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sink {
    /// To the client as result columns: plain references keep their origin.
    Output,
    /// Into an expression, a table, a set operation or a COPY: nothing keeps its origin.
    Derived,
    /// Only compared or sorted on (WHERE, EXISTS, ORDER BY…): no value leaves.
    Filter,
}

impl Sink {
    /// What an expression inside a target list of this sink feeds.
    fn expression(self) -> Sink {
        match self {
            Sink::Filter => Sink::Filter,
            _ => Sink::Derived,
        }
    }
}

/// Collects the column flow of one top-level statement node.
pub(crate) fn column_flow(ty: &str, body: &Value) -> ColumnFlow {
    let mut f = ColumnFlow::default();
    statement(&mut f, ty, body, Sink::Output);
    f.derived
        .sort_by(|a, b| (&a.qualifier, &a.column).cmp(&(&b.qualifier, &b.column)));
    f.derived.dedup();
    f
}

fn statement(f: &mut ColumnFlow, ty: &str, b: &Value, sink: Sink) {
    let returning = if sink == Sink::Filter {
        Sink::Filter
    } else {
        Sink::Output
    };
    match ty {
        "SelectStmt" => select(f, b, sink),
        "InsertStmt" => {
            ctes(f, b, sink);
            relation(f, field(b, "relation"));
            nested(f, field(b, "select_stmt"), Sink::Derived);
            if let Some(oc) = field(b, "on_conflict_clause") {
                set_list(f, field(oc, "target_list"));
                expr(f, field(oc, "where_clause"), Sink::Filter);
            }
            targets(f, field(b, "returning_list"), returning);
        }
        // UPDATE has SET and FROM, DELETE has USING; an absent field is a no-op.
        "UpdateStmt" | "DeleteStmt" => {
            ctes(f, b, sink);
            relation(f, field(b, "relation"));
            set_list(f, field(b, "target_list"));
            from_list(f, field(b, "from_clause"), sink);
            from_list(f, field(b, "using_clause"), sink);
            expr(f, field(b, "where_clause"), Sink::Filter);
            targets(f, field(b, "returning_list"), returning);
        }
        "MergeStmt" => {
            ctes(f, b, sink);
            relation(f, field(b, "relation"));
            if let Some(s) = field(b, "source_relation") {
                from_item(f, s, Sink::Derived);
            }
            expr(f, field(b, "join_condition"), Sink::Filter);
            for w in list(field(b, "merge_when_clauses")) {
                if let Some(("MergeWhenClause", w)) = node_of(w) {
                    expr(f, field(w, "condition"), Sink::Filter);
                    set_list(f, field(w, "target_list"));
                    expr(f, field(w, "values"), Sink::Derived);
                }
            }
            targets(f, field(b, "returning_list"), returning);
        }
        "CopyStmt" => {
            relation(f, field(b, "relation"));
            // COPY output carries no column origins.
            nested(f, field(b, "query"), Sink::Derived);
            expr(f, field(b, "where_clause"), Sink::Filter);
        }
        // Stored objects: what they hold is read later without the origin.
        "ViewStmt" | "CreateTableAsStmt" => nested(f, field(b, "query"), Sink::Derived),
        "DeclareCursorStmt" | "PrepareStmt" => nested(f, field(b, "query"), sink),
        "ExplainStmt" => nested(f, field(b, "query"), Sink::Filter),
        // Bodies the gateway cannot see into are policy's business (opaque code).
        "CreateFunctionStmt" | "DoStmt" => {}
        _ => expr(f, Some(b), Sink::Derived),
    }
}

fn nested(f: &mut ColumnFlow, v: Option<&Value>, sink: Sink) {
    if let Some((ty, b)) = v.and_then(node_of) {
        statement(f, ty, b, sink);
    }
}

fn list(v: Option<&Value>) -> &[Value] {
    v.and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn names(f: &mut ColumnFlow, v: Option<&Value>) {
    for n in list(v) {
        if let Some(("String", s)) = node_of(n) {
            f.alias_columns.push(str_field(s, "sval").to_string());
        }
    }
}

fn ctes(f: &mut ColumnFlow, b: &Value, sink: Sink) {
    let sink = if sink == Sink::Filter {
        Sink::Filter
    } else {
        Sink::Output
    };
    for c in list(field(b, "with_clause").and_then(|w| field(w, "ctes"))) {
        if let Some(("CommonTableExpr", e)) = node_of(c) {
            names(f, field(e, "aliascolnames"));
            f.relations.push(RelationName {
                table: None,
                name: str_field(e, "ctename").to_string(),
                function: false,
            });
            nested(f, field(e, "ctequery"), sink);
        }
    }
}

fn select(f: &mut ColumnFlow, b: &Value, sink: Sink) {
    ctes(f, b, sink);
    // SELECT … INTO stores the result in a new table.
    let sink = if field(b, "into_clause").is_some() {
        Sink::Derived
    } else {
        sink
    };
    let set_op = b.get("op").and_then(Value::as_i64).unwrap_or(1) > 1;
    if set_op {
        // A set operation's columns carry no origin.
        let arms = sink.expression();
        for arm in ["larg", "rarg"] {
            if let Some(a) = field(b, arm) {
                select(f, a, arms);
            }
        }
    }
    targets(f, field(b, "target_list"), sink);
    from_list(f, field(b, "from_clause"), sink);
    expr(f, field(b, "values_lists"), sink.expression());
    for k in [
        "where_clause",
        "having_clause",
        "group_clause",
        "sort_clause",
        "window_clause",
        "distinct_clause",
        "limit_offset",
        "limit_count",
    ] {
        expr(f, field(b, k), Sink::Filter);
    }
}

/// A target list (`SELECT …`, `RETURNING …`).
fn targets(f: &mut ColumnFlow, v: Option<&Value>, sink: Sink) {
    for t in list(v) {
        let Some(("ResTarget", t)) = node_of(t) else {
            expr(f, Some(t), sink.expression());
            continue;
        };
        let val = field(t, "val");
        match (val.and_then(column_ref), sink) {
            (Some(c), Sink::Output) => {
                if c.qualifier.is_none() && c.column != "*" {
                    f.projected.push(c.column.clone());
                }
                let name = str_field(t, "name");
                if !name.is_empty() && c.column != "*" && name != c.column {
                    f.renamed.push((c, name.to_string()));
                }
            }
            (Some(c), Sink::Derived) => f.derived.push(c),
            _ => expr(f, val, sink.expression()),
        }
    }
}

/// `SET col = value, …` (UPDATE, ON CONFLICT, MERGE): values go into the table.
fn set_list(f: &mut ColumnFlow, v: Option<&Value>) {
    for t in list(v) {
        match node_of(t) {
            Some(("ResTarget", t)) => expr(f, field(t, "val"), Sink::Derived),
            _ => expr(f, Some(t), Sink::Derived),
        }
    }
}

fn from_list(f: &mut ColumnFlow, v: Option<&Value>, sink: Sink) {
    for item in list(v) {
        from_item(f, item, sink);
    }
}

fn alias(f: &mut ColumnFlow, b: &Value, table: Option<TableRef>, function: bool) {
    let a = field(b, "alias");
    let alias_name = a.map(|a| str_field(a, "aliasname")).unwrap_or("");
    if let Some(a) = a {
        names(f, field(a, "colnames"));
    }
    let name = match (&table, alias_name) {
        (_, n) if !n.is_empty() => n.to_string(),
        (Some(t), _) => t.name.clone(),
        (None, _) => return,
    };
    f.relations.push(RelationName {
        table,
        name,
        function,
    });
}

fn relation(f: &mut ColumnFlow, v: Option<&Value>) {
    let Some(rv) = v else { return };
    let rv = match node_of(rv) {
        Some(("RangeVar", b)) => b,
        _ => rv,
    };
    let name = str_field(rv, "relname");
    if name.is_empty() {
        return;
    }
    let schema = str_field(rv, "schemaname");
    let table = TableRef {
        schema: (!schema.is_empty()).then(|| schema.to_string()),
        name: name.to_string(),
    };
    alias(f, rv, Some(table), false);
}

fn from_item(f: &mut ColumnFlow, v: &Value, sink: Sink) {
    let Some((ty, b)) = node_of(v) else {
        expr(f, Some(v), sink.expression());
        return;
    };
    match ty {
        "RangeVar" => relation(f, Some(b)),
        "RangeSubselect" => {
            // Plain columns of a subquery in FROM keep their origin.
            nested(f, field(b, "subquery"), sink);
            alias(f, b, None, false);
        }
        "JoinExpr" => {
            for side in ["larg", "rarg"] {
                if let Some(s) = field(b, side) {
                    from_item(f, s, sink);
                }
            }
            if sink != Sink::Filter {
                // USING and NATURAL merge same-named columns into one: for a
                // FULL JOIN an expression (COALESCE) with no origin, and for the
                // others one side's column carrying the other's value. Either
                // way the merged name is derived; NATURAL merges names the
                // statement does not spell, so every column counts.
                for n in list(field(b, "using_clause")) {
                    if let Some(("String", s)) = node_of(n) {
                        f.derived.push(ColumnUse {
                            qualifier: None,
                            column: str_field(s, "sval").to_string(),
                        });
                    }
                }
                if b.get("is_natural").and_then(Value::as_bool) == Some(true) {
                    f.derived.push(ColumnUse {
                        qualifier: None,
                        column: "*".into(),
                    });
                }
            }
            expr(f, field(b, "quals"), Sink::Filter);
            alias(f, b, None, false);
        }
        "RangeTableSample" => {
            relation(f, field(b, "relation"));
            expr(f, field(b, "args"), Sink::Filter);
            expr(f, field(b, "repeatable"), Sink::Filter);
        }
        _ => {
            // Functions in FROM (and anything else): their output derives from their arguments.
            expr(f, Some(b), sink.expression());
            alias(f, b, None, true);
        }
    }
}

/// A plain column reference, when `v` is one.
fn column_ref(v: &Value) -> Option<ColumnUse> {
    let ("ColumnRef", c) = node_of(v)? else {
        return None;
    };
    column_use(c)
}

fn column_use(c: &Value) -> Option<ColumnUse> {
    let mut parts: Vec<String> = Vec::new();
    for p in list(field(c, "fields")) {
        match node_of(p) {
            Some(("String", s)) => parts.push(str_field(s, "sval").to_string()),
            Some(("AStar", _)) => parts.push("*".into()),
            _ => return None,
        }
    }
    let column = parts.pop()?;
    Some(ColumnUse {
        qualifier: parts.pop(),
        column,
    })
}

/// Any expression: column references in it feed `sink`.
fn expr(f: &mut ColumnFlow, v: Option<&Value>, sink: Sink) {
    let Some(v) = v else { return };
    match v {
        Value::Array(a) => {
            for x in a {
                expr(f, Some(x), sink);
            }
        }
        Value::Object(m) => {
            for (k, child) in m {
                if k.starts_with(|c: char| c.is_ascii_uppercase()) {
                    node(f, k, child, sink);
                } else {
                    expr(f, Some(child), sink);
                }
            }
        }
        _ => {}
    }
}

fn node(f: &mut ColumnFlow, ty: &str, b: &Value, sink: Sink) {
    match ty {
        "ColumnRef" => {
            if sink == Sink::Derived {
                if let Some(c) = column_use(b) {
                    f.derived.push(c);
                }
            }
        }
        "SubLink" => {
            expr(f, field(b, "testexpr"), sink);
            // EXISTS, ALL and ANY only compare what the subquery returns.
            let compares = matches!(b.get("sub_link_type").and_then(Value::as_i64), Some(1..=3));
            let inner = if compares { Sink::Filter } else { sink };
            nested(f, field(b, "subselect"), inner);
        }
        "RangeVar" => relation(f, Some(b)),
        "SelectStmt" | "InsertStmt" | "UpdateStmt" | "DeleteStmt" | "MergeStmt" => {
            statement(f, ty, b, sink)
        }
        _ => expr(f, Some(b), sink),
    }
}
