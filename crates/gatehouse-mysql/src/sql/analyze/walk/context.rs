//! Where the parts of queries and SELECTs send their values, registered
//! as the walk enters them (see [`super`]), and the CTE scopes that decide
//! whether a name is a CTE or a table.

use super::{addr, CteScope, Sink, Walk};
use crate::sql::analyze::names::{is_plain_column, last_part, not_mysql};
use crate::sql::analyze::AnalyzeError;
use gatehouse_sql::{RelationName, TableRef};
use sqlparser::ast::{
    Expr, GroupByExpr, JoinConstraint, JoinOperator, LimitClause, NamedWindowExpr, OrderByKind,
    Query, Select, SelectItem, SelectItemQualifiedWildcardKind, SetExpr, TableAlias,
    TableWithJoins,
};
use std::collections::HashMap;

impl Walk {
    /// Entering a query: its sink, its CTEs' scope, and what its parts feed.
    pub(super) fn enter_query(&mut self, q: &Query) -> Result<(), AnalyzeError> {
        let sink = self
            .queries
            .get(&addr(q))
            .copied()
            .unwrap_or(self.current());
        self.stack.push(sink);
        // The i-th CTE's own query sees only the CTEs before it.
        if let Some(scope) = self.scopes.last_mut() {
            if let Some(&i) = scope.queries.get(&addr(q)) {
                scope.visible = i + usize::from(scope.recursive);
            }
        }
        if q.fetch.is_some()
            || q.for_clause.is_some()
            || q.settings.is_some()
            || q.format_clause.is_some()
            || !q.pipe_operators.is_empty()
        {
            return Err(not_mysql("this query clause"));
        }
        if !q.locks.is_empty() {
            self.locks_rows = true;
        }
        if let Some(with) = &q.with {
            // What a CTE returns reaches the client through the query that
            // reads it, with no origin the server reports for sure: derived,
            // like a subquery in FROM.
            let inner = sink.expression();
            let mut scope = CteScope {
                names: HashMap::new(),
                queries: HashMap::new(),
                count: with.cte_tables.len(),
                recursive: with.recursive,
                visible: with.cte_tables.len(),
            };
            for (i, cte) in with.cte_tables.iter().enumerate() {
                scope.names.entry(cte.alias.name.value.clone()).or_insert(i);
                scope.queries.insert(addr(&*cte.query), i);
                self.queries.insert(addr(&*cte.query), inner);
                self.alias(Some(&cte.alias), None, false);
            }
            self.scopes.push(scope);
        }
        // What the body's parts feed. Set operations nest left-deep, so
        // their arms are found with a stack of our own, not by recursion.
        let mut pending: Vec<(&SetExpr, Sink)> = vec![(&q.body, sink)];
        while let Some((body, sink)) = pending.pop() {
            match body {
                SetExpr::Select(s) => {
                    self.selects.insert(addr(&**s), sink);
                }
                SetExpr::Query(inner) => {
                    self.queries.insert(addr(&**inner), sink);
                }
                // A set operation's columns carry no origin.
                SetExpr::SetOperation { left, right, .. } => {
                    pending.push((left, sink.expression()));
                    pending.push((right, sink.expression()));
                }
                SetExpr::Values(v) => {
                    for row in &v.rows {
                        for e in &row.content {
                            self.sink_expr(e, sink.expression());
                        }
                    }
                }
                SetExpr::Table(_) => {
                    return Err(AnalyzeError::Unsupported(
                        "TABLE inside a query is not supported through the gateway; use \
                         SELECT * FROM"
                            .into(),
                    ))
                }
                SetExpr::Insert(_)
                | SetExpr::Update(_)
                | SetExpr::Delete(_)
                | SetExpr::Merge(_) => {
                    return Err(AnalyzeError::Unsupported(
                        "WITH … UPDATE or DELETE is not supported through the gateway; write \
                         the CTE as a subquery"
                            .into(),
                    ))
                }
            }
        }
        if let Some(ob) = &q.order_by {
            if let OrderByKind::Expressions(list) = &ob.kind {
                for o in list {
                    self.sink_expr(&o.expr, Sink::Filter);
                }
            }
        }
        match &q.limit_clause {
            Some(LimitClause::LimitOffset {
                limit,
                offset,
                limit_by,
            }) => {
                for e in limit.iter().chain(offset.as_ref().map(|o| &o.value)) {
                    self.sink_expr(e, Sink::Filter);
                }
                for e in limit_by {
                    self.sink_expr(e, Sink::Filter);
                }
            }
            Some(LimitClause::OffsetCommaLimit { offset, limit }) => {
                self.sink_expr(offset, Sink::Filter);
                self.sink_expr(limit, Sink::Filter);
            }
            None => {}
        }
        Ok(())
    }

    /// Entering a SELECT: its sink, and what its clauses feed.
    pub(super) fn enter_select(&mut self, s: &Select) -> Result<(), AnalyzeError> {
        let mut sink = self
            .selects
            .get(&addr(s))
            .copied()
            .unwrap_or(self.current());
        if let Some(into) = &s.into {
            // `INTO @a, @b`: the values go into user variables, which any
            // later statement can read without their origin.
            let vars = into
                .targets
                .iter()
                .all(|t| matches!(t, Expr::Identifier(i) if i.value.starts_with('@')));
            if !vars || into.temporary || into.unlogged || into.table {
                return Err(AnalyzeError::Unsupported(
                    "SELECT … INTO works through the gateway only into @user variables".into(),
                ));
            }
            sink = sink.expression();
        }
        self.stack.push(sink);
        if s.top.is_some()
            || s.exclude.is_some()
            || !s.lateral_views.is_empty()
            || s.prewhere.is_some()
            || !s.connect_by.is_empty()
            || !s.cluster_by.is_empty()
            || !s.distribute_by.is_empty()
            || !s.sort_by.is_empty()
            || s.qualify.is_some()
            || s.value_table_mode.is_some()
        {
            return Err(not_mysql("this SELECT clause"));
        }
        self.select_items(s, sink);
        for twj in &s.from {
            self.joins(twj, sink);
        }
        for e in s.selection.iter().chain(&s.having) {
            self.sink_expr(e, Sink::Filter);
        }
        if let GroupByExpr::Expressions(list, _) = &s.group_by {
            for e in list {
                self.sink_expr(e, Sink::Filter);
            }
        }
        for w in &s.named_window {
            if let NamedWindowExpr::WindowSpec(spec) = &w.1 {
                for e in &spec.partition_by {
                    self.sink_expr(e, Sink::Filter);
                }
                for o in &spec.order_by {
                    self.sink_expr(&o.expr, Sink::Filter);
                }
            }
        }
        Ok(())
    }

    /// The ON, USING and NATURAL of a FROM item's joins.
    pub(in crate::sql::analyze) fn joins(&mut self, twj: &TableWithJoins, sink: Sink) {
        for j in &twj.joins {
            let constraint = match &j.join_operator {
                JoinOperator::Join(c)
                | JoinOperator::Inner(c)
                | JoinOperator::Left(c)
                | JoinOperator::LeftOuter(c)
                | JoinOperator::Right(c)
                | JoinOperator::RightOuter(c)
                | JoinOperator::FullOuter(c)
                | JoinOperator::CrossJoin(c)
                | JoinOperator::StraightJoin(c)
                | JoinOperator::Semi(c)
                | JoinOperator::LeftSemi(c)
                | JoinOperator::RightSemi(c)
                | JoinOperator::Anti(c)
                | JoinOperator::LeftAnti(c)
                | JoinOperator::RightAnti(c)
                | JoinOperator::AsOf { constraint: c, .. } => c,
                _ => continue,
            };
            match constraint {
                JoinConstraint::On(e) => self.sink_expr(e, Sink::Filter),
                // USING and NATURAL merge same-named columns into one whose
                // value comes from either side: it keeps no single origin.
                JoinConstraint::Using(names) | JoinConstraint::UsingAlias(names, _)
                    if sink != Sink::Filter =>
                {
                    for n in names {
                        if let Some(last) = last_part(n) {
                            self.derived(None, last.value.to_lowercase());
                        }
                    }
                }
                JoinConstraint::Natural if sink != Sink::Filter => {
                    self.derived(None, "*".into());
                }
                _ => {}
            }
        }
    }
    pub(super) fn alias(
        &mut self,
        alias: Option<&TableAlias>,
        table: Option<TableRef>,
        function: bool,
    ) {
        if let Some(a) = alias {
            for c in &a.columns {
                self.flow.alias_columns.push(c.name.value.to_lowercase());
            }
        }
        let name = match (alias, &table) {
            (Some(a), _) => a.name.value.clone(),
            (None, Some(t)) => t.name.clone(),
            (None, None) => return,
        };
        self.flow.relations.push(RelationName {
            table,
            name,
            function,
        });
    }
    pub(super) fn select_items(&mut self, s: &Select, sink: Sink) {
        for item in &s.projection {
            match item {
                SelectItem::UnnamedExpr(e)
                | SelectItem::ExprWithAlias { expr: e, .. }
                | SelectItem::ExprWithAliases { expr: e, .. } => {
                    if sink == Sink::Output && is_plain_column(e) {
                        self.plain.insert(addr(e));
                    } else {
                        self.sink_expr(e, sink.expression());
                    }
                }
                SelectItem::Wildcard(_) if sink == Sink::Derived => {
                    self.derived(None, "*".into());
                }
                SelectItem::QualifiedWildcard(kind, _) => match kind {
                    SelectItemQualifiedWildcardKind::ObjectName(n) if sink == Sink::Derived => {
                        let q = last_part(n).map(|p| p.value.clone());
                        self.derived(q, "*".into());
                    }
                    SelectItemQualifiedWildcardKind::Expr(e) => {
                        self.sink_expr(e, sink.expression());
                    }
                    SelectItemQualifiedWildcardKind::ObjectName(_) => {}
                },
                SelectItem::Wildcard(_) => {}
            }
        }
    }
}
