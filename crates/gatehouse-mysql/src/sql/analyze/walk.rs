//! One walk over a statement's whole tree with sqlparser's `Visitor`: every
//! table it reads, every function it calls, whether it locks rows, and where
//! its column references send their values (gatehouse-sql's `ColumnFlow`).
//!
//! The visitor reaches every node sqlparser derives `Visit` for, so nothing
//! the walk does not know about is skipped: a table named anywhere that the
//! statement's own rules did not mark as its target counts as read. What the
//! visitor does not tell is *where* a node sits (a select list, a WHERE, a
//! subquery in FROM), so a node's parent registers, by address, what its
//! children feed before the visitor reaches them; anything unregistered
//! inherits its parent's sink, and a column reference that is not a
//! registered plain projection of the statement's own result is derived.
//! Addresses are only compared, never dereferenced, and each map holds one
//! node type (a node and its first field may share an address, two live
//! nodes of one type never do).

mod context;

use super::functions;
use super::names::{function_name, is_column, is_dual, last_part, not_mysql, table_ref};
use super::AnalyzeError;
use gatehouse_sql::{ColumnFlow, ColumnUse, RelationName, TableRef};
use sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, InTarget, ObjectName,
    ObjectNamePart, Query, Select, TableFactor, Visit, Visitor,
};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::ops::ControlFlow;

/// Where a value goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Sink {
    /// To the client as a result column the server describes with its
    /// origin: only plain columns of the statement's own select list.
    Output,
    /// Anywhere its origin is lost: an expression, a set operation, a
    /// subquery's result, a variable, a table, a file.
    Derived,
    /// Only compared or sorted on (WHERE, ON, GROUP BY, ORDER BY, EXISTS…).
    Filter,
}

impl Sink {
    /// What an expression computed from a value of this sink feeds.
    pub(super) fn expression(self) -> Sink {
        match self {
            Sink::Filter => Sink::Filter,
            _ => Sink::Derived,
        }
    }
}

/// The CTE names one WITH makes visible.
struct CteScope {
    /// Each name and its position (the first, should one repeat).
    names: HashMap<String, usize>,
    /// Each CTE's query, by address, and its position.
    queries: HashMap<usize, usize>,
    count: usize,
    recursive: bool,
    /// How many CTEs the query being walked sees: inside the i-th CTE only
    /// the earlier ones (and itself when RECURSIVE), so that
    /// `WITH t AS (SELECT * FROM t)` reads the real table `t`.
    visible: usize,
}

fn addr<T>(x: &T) -> usize {
    std::ptr::from_ref(x) as usize
}

fn flow(r: Result<(), AnalyzeError>) -> ControlFlow<AnalyzeError> {
    match r {
        Ok(()) => ControlFlow::Continue(()),
        Err(e) => ControlFlow::Break(e),
    }
}

/// What the walk found.
pub(super) struct Walk {
    pub(super) reads: Vec<TableRef>,
    read: HashSet<TableRef>,
    pub(super) functions: BTreeSet<String>,
    pub(super) opaque: BTreeSet<String>,
    pub(super) locks_rows: bool,
    pub(super) flow: ColumnFlow,
    root: Sink,
    scopes: Vec<CteScope>,
    queries: HashMap<usize, Sink>,
    selects: HashMap<usize, Sink>,
    exprs: HashMap<usize, Sink>,
    /// Expressions that are plain columns of the statement's result.
    plain: HashSet<usize>,
    /// Names that are the statement's targets, not reads.
    skip: HashSet<usize>,
    stack: Vec<Sink>,
}

impl Walk {
    /// A walk whose top-level values feed `root`.
    pub(super) fn new(root: Sink) -> Self {
        Walk {
            reads: Vec::new(),
            read: HashSet::new(),
            functions: BTreeSet::new(),
            opaque: BTreeSet::new(),
            locks_rows: false,
            flow: ColumnFlow::default(),
            root,
            scopes: Vec::new(),
            queries: HashMap::new(),
            selects: HashMap::new(),
            exprs: HashMap::new(),
            plain: HashSet::new(),
            skip: HashSet::new(),
            stack: Vec::new(),
        }
    }

    /// Walks `node` (a statement or any part of one).
    pub(super) fn run<V: Visit>(&mut self, node: &V) -> Result<(), AnalyzeError> {
        match node.visit(self) {
            ControlFlow::Continue(()) => Ok(()),
            ControlFlow::Break(e) => Err(e),
        }
    }

    /// `name` is a target of the statement (written, created, dropped): not a read.
    pub(super) fn skip(&mut self, name: &ObjectName) {
        self.skip.insert(addr(name));
    }

    pub(super) fn sink_query(&mut self, q: &Query, sink: Sink) {
        self.queries.insert(addr(q), sink);
    }

    pub(super) fn sink_expr(&mut self, e: &Expr, sink: Sink) {
        self.exprs.insert(addr(e), sink);
    }

    /// A relation the statement names outside any FROM (an INSERT target).
    pub(super) fn relation(&mut self, table: TableRef, alias: Option<&str>) {
        let name = alias.map_or_else(|| table.name.clone(), str::to_string);
        self.flow.relations.push(RelationName {
            table: Some(table),
            name,
            function: false,
        });
    }

    fn current(&self) -> Sink {
        self.stack.last().copied().unwrap_or(self.root)
    }

    fn derived(&mut self, qualifier: Option<String>, column: String) {
        self.flow.derived.push(ColumnUse { qualifier, column });
    }

    fn call(&mut self, name: &ObjectName) -> Result<(), AnalyzeError> {
        let name = function_name(name)?;
        if !functions::is_safe(&name) {
            self.opaque.insert(name.clone());
        }
        self.functions.insert(name);
        Ok(())
    }

    fn is_cte(&self, name: &str) -> bool {
        self.scopes
            .iter()
            .any(|s| s.names.get(name).is_some_and(|&i| i < s.visible))
    }

    fn column(&mut self, e: &Expr, qualifier: Option<&Ident>, column: &Ident) {
        if self.plain.contains(&addr(e)) {
            if qualifier.is_none() {
                self.flow.projected.push(column.value.to_lowercase());
            }
            return;
        }
        if self.current() != Sink::Filter {
            self.derived(
                qualifier.map(|q| q.value.clone()),
                column.value.to_lowercase(),
            );
        }
    }
}

impl Visitor for Walk {
    type Break = AnalyzeError;

    fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<AnalyzeError> {
        flow(self.enter_query(q))
    }

    fn post_visit_query(&mut self, q: &Query) -> ControlFlow<AnalyzeError> {
        if q.with.is_some() {
            self.scopes.pop();
        }
        if let Some(scope) = self.scopes.last_mut() {
            if scope.queries.contains_key(&addr(q)) {
                scope.visible = scope.count;
            }
        }
        self.stack.pop();
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, s: &Select) -> ControlFlow<AnalyzeError> {
        flow(self.enter_select(s))
    }

    fn post_visit_select(&mut self, _s: &Select) -> ControlFlow<AnalyzeError> {
        self.stack.pop();
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, tf: &TableFactor) -> ControlFlow<AnalyzeError> {
        let sink = self.current();
        let outcome = match tf {
            // A table function: a call, not a table.
            TableFactor::Table {
                name,
                alias,
                args: Some(_),
                ..
            } => {
                self.skip.insert(addr(name));
                self.alias(alias.as_ref(), None, true);
                self.call(name)
            }
            TableFactor::Table { name, .. } if is_dual(name) => Ok(()),
            TableFactor::Table { name, alias, .. } => table_ref(name).map(|t| {
                let cte = t.schema.is_none() && self.is_cte(&t.name);
                self.alias(alias.as_ref(), (!cte).then_some(t), false);
            }),
            TableFactor::Derived {
                subquery, alias, ..
            } => {
                // What a subquery in FROM returns carries no origin the
                // server reports for sure: derived, like an expression.
                self.sink_query(subquery, sink.expression());
                self.alias(alias.as_ref(), None, false);
                Ok(())
            }
            TableFactor::NestedJoin {
                table_with_joins,
                alias,
            } => {
                self.joins(table_with_joins, sink);
                self.alias(alias.as_ref(), None, false);
                Ok(())
            }
            TableFactor::JsonTable { alias, .. } => {
                self.functions.insert("json_table".into());
                self.alias(alias.as_ref(), None, true);
                Ok(())
            }
            _ => Err(not_mysql("this FROM item")),
        };
        flow(outcome)
    }

    fn pre_visit_relation(&mut self, name: &ObjectName) -> ControlFlow<AnalyzeError> {
        if self.skip.contains(&addr(name)) || is_dual(name) {
            return ControlFlow::Continue(());
        }
        let t = match table_ref(name) {
            Ok(t) => t,
            Err(e) => return ControlFlow::Break(e),
        };
        if t.schema.is_none() && self.is_cte(&t.name) {
            return ControlFlow::Continue(());
        }
        if self.read.insert(t.clone()) {
            self.reads.push(t);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<AnalyzeError> {
        if let Some(&sink) = self.exprs.get(&addr(e)) {
            self.stack.push(sink);
        }
        match e {
            Expr::Identifier(i) if is_column(i) => self.column(e, None, i),
            Expr::CompoundIdentifier(parts) => {
                if let [.., q, c] = parts.as_slice() {
                    if !parts[0].value.starts_with('@') {
                        self.column(e, Some(q), c);
                    }
                }
            }
            Expr::Function(f) => {
                if let Err(err) = self.call(&f.name) {
                    return ControlFlow::Break(err);
                }
                if let FunctionArguments::List(list) = &f.args {
                    for a in &list.args {
                        let arg = match a {
                            FunctionArg::Named { arg, .. }
                            | FunctionArg::ExprNamed { arg, .. }
                            | FunctionArg::Unnamed(arg) => arg,
                        };
                        if let FunctionArgExpr::QualifiedWildcard(n) = arg {
                            if self.current() != Sink::Filter {
                                self.derived(last_part(n).map(|p| p.value.clone()), "*".into());
                            }
                        }
                    }
                }
            }
            // EXISTS, IN, ANY and ALL only compare what their subquery returns.
            Expr::Exists { subquery, .. }
            | Expr::In {
                target: InTarget::Subquery(subquery),
                ..
            } => {
                self.sink_query(subquery, Sink::Filter);
            }
            Expr::In {
                target: InTarget::Table { .. } | InTarget::Unnest(_),
                ..
            } => return ControlFlow::Break(not_mysql("IN with a table or UNNEST")),
            Expr::AnyOp { right, .. } | Expr::AllOp { right, .. } => {
                if let Expr::Subquery(q) = &**right {
                    self.sink_query(q, Sink::Filter);
                }
            }
            Expr::MatchAgainst { columns, .. } => {
                self.functions.insert("match".into());
                if self.current() != Sink::Filter {
                    for c in columns {
                        let q = c.0.len().checked_sub(2).and_then(|i| match &c.0[i] {
                            ObjectNamePart::Identifier(q) => Some(q.value.clone()),
                            ObjectNamePart::Function(_) => None,
                        });
                        if let Some(col) = last_part(c) {
                            self.derived(q, col.value.to_lowercase());
                        }
                    }
                }
            }
            Expr::Wildcard(_) if self.current() != Sink::Filter => {
                self.derived(None, "*".into());
            }
            Expr::QualifiedWildcard(n, _) if self.current() != Sink::Filter => {
                self.derived(last_part(n).map(|p| p.value.clone()), "*".into());
            }
            Expr::Convert { .. } => {
                self.functions.insert("convert".into());
            }
            Expr::Extract { .. } => {
                self.functions.insert("extract".into());
            }
            Expr::Substring { .. } => {
                self.functions.insert("substring".into());
            }
            Expr::Trim { .. } => {
                self.functions.insert("trim".into());
            }
            Expr::Position { .. } => {
                self.functions.insert("position".into());
            }
            Expr::Lambda(_) | Expr::Prior(_) | Expr::OuterJoin(_) | Expr::Dictionary(_) => {
                return ControlFlow::Break(not_mysql("this expression"));
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, e: &Expr) -> ControlFlow<AnalyzeError> {
        if self.exprs.contains_key(&addr(e)) {
            self.stack.pop();
        }
        ControlFlow::Continue(())
    }
}
