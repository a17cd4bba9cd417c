//! The column guard: under column rules, a statement may select a covered
//! column only as itself, where the backend describes the result column
//! with its origin and the gateway masks it by rule. Anything that would
//! carry the value out without that origin is refused before it reaches the
//! backend: an expression (`upper(ssn)`, `ssn || ''`, `ssn::bytea`), a set
//! operation, a scalar subquery, a whole-row reference (`row_to_json(c)`),
//! a copy into another table or a stored object, a COPY query, and code the
//! gateway cannot see into.
//!
//! The check is by name, without the catalog, so it leans to refusing: a
//! reference that *may* be a covered column counts as one. Columns the
//! detectors found sensitive (`discovery.rs`) count as covered too.

use super::discovery::Discovery;
use gatehouse_mask::{name_matches, ColumnRule, ColumnTarget, MaskingEngine};
use gatehouse_sql::{ColumnFlow, ColumnUse, StatementAnalysis, TableRef};
use std::collections::HashSet;
use std::sync::Arc;

/// Checks statements of a session whose results are masked by column rules.
#[derive(Clone)]
pub(crate) struct ColumnGuard {
    engine: Arc<MaskingEngine>,
    /// Functions the operator trusts not to return covered columns (name patterns).
    trusted_functions: Arc<[String]>,
    /// The connection's found sensitive columns, when discovery is on.
    discovery: Option<Arc<Discovery>>,
}

impl ColumnGuard {
    pub(crate) fn new(
        engine: Arc<MaskingEngine>,
        trusted_functions: Arc<[String]>,
        discovery: Option<Arc<Discovery>>,
    ) -> Self {
        Self {
            engine,
            trusted_functions,
            discovery,
        }
    }

    /// Changes when the found columns do: decisions made before are stale.
    pub(crate) fn generation(&self) -> u64 {
        self.discovery.as_ref().map_or(0, |d| d.generation())
    }

    /// Whether any column is covered (by a rule, or found sensitive).
    pub(crate) fn applies(&self) -> bool {
        !self.engine.rules().is_empty()
            || self
                .discovery
                .as_ref()
                .is_some_and(|d| !d.rules().is_empty())
    }

    /// `Err(reason)` when the statement could carry a covered column's value
    /// out without its origin.
    pub(crate) fn check(&self, st: &StatementAnalysis) -> Result<(), String> {
        let found = self.discovery.as_ref().map(|d| d.rules());
        let rules: Vec<&ColumnRule> = self
            .engine
            .rules()
            .iter()
            .chain(found.iter().flat_map(|f| f.iter()))
            .collect();
        if rules.is_empty() {
            return Ok(());
        }
        if st.flags.opaque_code {
            return Err(
                "column masking applies (column rules, or columns found sensitive), and procedural code (DO, CALL, CREATE FUNCTION) could \
                 return masked columns in a form the gateway cannot follow"
                    .into(),
            );
        }
        if let Some(f) = st.opaque_functions.iter().find(|f| !self.trusted(f)) {
            return Err(format!(
                "column masking applies (column rules, or columns found sensitive), and `{f}` is a function the gateway cannot see into: \
                 it could return masked columns in a form the gateway cannot follow \
                 (an operator may trust it with `trusted_functions` in [connection.masking])"
            ));
        }
        Scope::new(&rules, st).check()
    }

    fn trusted(&self, function: &str) -> bool {
        self.trusted_functions
            .iter()
            .any(|p| name_matches(p, function))
    }
}

/// One statement's relations against the rules.
struct Scope<'a> {
    rules: &'a [&'a ColumnRule],
    /// Tables the statement names anywhere.
    tables: Vec<&'a TableRef>,
    flow: &'a ColumnFlow,
    /// Whether a name pattern rule exists (it may cover a column of any table).
    patterns: bool,
}

impl<'a> Scope<'a> {
    fn new(rules: &'a [&'a ColumnRule], st: &'a StatementAnalysis) -> Self {
        let mut tables: Vec<&TableRef> =
            st.actions.iter().filter_map(|a| a.table.as_ref()).collect();
        tables.extend(st.columns.relations.iter().filter_map(|r| r.table.as_ref()));
        let patterns = rules
            .iter()
            .any(|r| matches!(r.target, ColumnTarget::Pattern(_)));
        Self {
            rules,
            tables,
            flow: &st.columns,
            patterns,
        }
    }

    fn check(&self) -> Result<(), String> {
        let flow = self.flow;
        // Names that carry a covered column under another name.
        let mut renamed: HashSet<String> = HashSet::new();
        if self.any_rule_in_reach() {
            renamed.extend(flow.alias_columns.iter().map(|n| n.to_ascii_lowercase()));
        }
        loop {
            let before = renamed.len();
            for (from, to) in &flow.renamed {
                if self.covering_rule(from, &renamed).is_some() {
                    renamed.insert(to.to_ascii_lowercase());
                }
            }
            if renamed.len() == before {
                break;
            }
        }
        for u in &flow.derived {
            if u.column == "*" {
                self.whole_row(u.qualifier.as_deref())?;
                continue;
            }
            if let Some(label) = self.covering_rule(u, &renamed) {
                let covered = match label.strip_prefix(super::discovery::FOUND) {
                    Some(how) => format!("was found sensitive{how}"),
                    None => format!("is masked by rule `{label}`"),
                };
                return Err(format!(
                    "column `{}` {covered}, and this statement uses it in an \
                     expression, a set operation (UNION…), a subquery's value, a COPY query or a \
                     copy into another table or object, where the gateway cannot follow it to mask it",
                    u.column
                ));
            }
            if u.qualifier.is_none() {
                self.whole_row_if_relation(&u.column)?;
            }
        }
        for name in &flow.projected {
            self.whole_row_if_relation(name)?;
        }
        Ok(())
    }

    /// The label of a rule that may cover the column `u` refers to.
    fn covering_rule(&self, u: &ColumnUse, renamed: &HashSet<String>) -> Option<&str> {
        let rules = self.rules;
        if renamed.contains(&u.column.to_ascii_lowercase()) {
            return Some(
                rules
                    .iter()
                    .find(|r| self.in_reach(&r.target))
                    .map_or("", |r| r.label.as_str()),
            );
        }
        // A qualifier naming a table tells which table the column is in.
        let qualified_table = u.qualifier.as_deref().and_then(|q| {
            self.flow
                .relations
                .iter()
                .find(|r| r.name.eq_ignore_ascii_case(q))
                .map(|r| r.table.as_ref())
        });
        rules
            .iter()
            .find(|r| {
                r.target.matches_name(&u.column)
                    && match (&r.target, qualified_table) {
                        (ColumnTarget::Pattern(_), _) => true,
                        (t, Some(Some(table))) => covers_table(t, table),
                        (t, _) => self.in_reach(t),
                    }
            })
            .map(|r| r.label.as_str())
    }

    /// Whether a rule's table is named by the statement (patterns: always).
    fn in_reach(&self, t: &ColumnTarget) -> bool {
        match t {
            ColumnTarget::Pattern(_) => true,
            t => self.tables.iter().any(|table| covers_table(t, table)),
        }
    }

    fn any_rule_in_reach(&self) -> bool {
        self.rules.iter().any(|r| self.in_reach(&r.target))
    }

    /// A whole-row reference to `name`, when the statement has a relation of that name.
    fn whole_row_if_relation(&self, name: &str) -> Result<(), String> {
        if self
            .flow
            .relations
            .iter()
            .any(|r| r.name.eq_ignore_ascii_case(name))
        {
            self.whole_row(Some(name))
        } else {
            Ok(())
        }
    }

    /// Refuses a whole-row reference (`c`, `c.*` or `*` outside a plain
    /// select list) to a relation that may hold a covered column.
    fn whole_row(&self, qualifier: Option<&str>) -> Result<(), String> {
        let rules = self.rules;
        let matching: Vec<_> = self
            .flow
            .relations
            .iter()
            .filter(|r| qualifier.is_none_or(|q| r.name.eq_ignore_ascii_case(q)))
            .collect();
        let covered = if matching.is_empty() {
            self.any_rule_in_reach()
        } else {
            matching.iter().any(|r| match &r.table {
                // A name pattern may cover any of its columns.
                Some(t) => self.patterns || rules.iter().any(|rule| covers_table(&rule.target, t)),
                None => self.any_rule_in_reach(),
            })
        };
        if !covered {
            return Ok(());
        }
        let what = qualifier.unwrap_or("*");
        Err(format!(
            "column masking (a column rule, or a column found sensitive) applies to columns this statement reads, and `{what}` is used as a \
             whole row (in an expression, a set operation, a COPY query or a copy into another \
             table), where the gateway cannot follow its columns to mask them; list the columns \
             in the select list instead"
        ))
    }
}

/// Whether an exact rule names `table` (an unqualified name may be in any schema).
fn covers_table(t: &ColumnTarget, table: &TableRef) -> bool {
    match t {
        ColumnTarget::Exact {
            schema,
            table: rule_table,
            ..
        } => {
            table.name.eq_ignore_ascii_case(rule_table)
                && match (schema, &table.schema) {
                    (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                    _ => true,
                }
        }
        ColumnTarget::Pattern(_) | ColumnTarget::JsonPath(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_mask::{ColumnRule, HashKey, Strategy};
    use gatehouse_sql::{analyze_uncached, ParseMode};

    fn guard(rules: &[&str]) -> ColumnGuard {
        let rules = rules
            .iter()
            .map(|r| ColumnRule {
                target: if r.contains('.') {
                    ColumnTarget::exact(r).unwrap()
                } else {
                    ColumnTarget::pattern(r).unwrap()
                },
                strategy: Strategy::Redact,
                label: r.to_string(),
            })
            .collect();
        let engine = MaskingEngine::new(Vec::new(), rules, HashKey::new([0; 32])).unwrap();
        ColumnGuard::new(Arc::new(engine), Arc::from(vec!["app.*".to_string()]), None)
    }

    fn check(g: &ColumnGuard, sql: &str) -> Result<(), String> {
        let a = analyze_uncached(sql, ParseMode::default()).unwrap();
        a.statements.iter().try_for_each(|s| g.check(s))
    }

    #[test]
    fn plain_selects_pass_and_derived_values_are_refused() {
        let g = guard(&["public.customers.ssn"]);
        for ok in [
            "SELECT ssn FROM customers",
            "SELECT c.ssn AS x, upper(name) FROM customers c WHERE ssn LIKE '1%'",
            "SELECT x FROM (SELECT ssn AS x FROM customers) s",
            "SELECT * FROM customers",
            "WITH c AS (SELECT * FROM customers) SELECT ssn FROM c",
            "SELECT upper(ssn) FROM users",
            "SELECT upper(u.ssn) FROM users u JOIN customers c ON c.id = u.id",
            "SELECT row_to_json(o) FROM orders o",
            "COPY customers TO STDOUT",
            "SELECT app.lookup(1)",
            "UPDATE customers SET name = upper(name) WHERE ssn = 'x' RETURNING ssn",
        ] {
            assert_eq!(check(&g, ok), Ok(()), "{ok}");
        }
        for bad in [
            "SELECT upper(ssn) FROM customers",
            "SELECT c.ssn || '' FROM customers c",
            "SELECT ssn FROM customers UNION SELECT 'x'",
            "SELECT (SELECT ssn FROM customers LIMIT 1)",
            "SELECT row_to_json(c) FROM customers c",
            "SELECT c FROM customers c",
            "SELECT * FROM customers UNION ALL SELECT * FROM customers",
            "CREATE TABLE t AS SELECT ssn FROM customers",
            "INSERT INTO t SELECT ssn FROM public.customers",
            "COPY (SELECT * FROM customers) TO STDOUT",
            "SELECT upper(x) FROM (SELECT ssn AS x FROM customers) s",
            "SELECT upper(y) FROM (SELECT ssn FROM customers) s(y)",
            "SELECT upper(z) FROM (SELECT x AS z FROM (SELECT ssn AS x FROM customers) a) b",
            "SELECT row_to_json(s) FROM (SELECT ssn FROM customers) s",
            "SELECT leak(ssn) FROM customers",
            "DO $$ BEGIN RAISE NOTICE 'x'; END $$",
        ] {
            assert!(check(&g, bad).is_err(), "{bad}");
        }
        let msg = check(&g, "SELECT md5(ssn) FROM customers").unwrap_err();
        assert!(
            msg.contains("`ssn`") && msg.contains("public.customers.ssn"),
            "{msg}"
        );
    }

    #[test]
    fn patterns_cover_any_table_by_name() {
        let g = guard(&["*ssn*"]);
        assert!(check(&g, "SELECT lower(customer_ssn) FROM anything").is_err());
        assert!(check(&g, "SELECT row_to_json(o) FROM orders o").is_err());
        assert_eq!(check(&g, "SELECT lower(name) FROM orders"), Ok(()));
        assert_eq!(check(&g, "SELECT customer_ssn FROM orders"), Ok(()));
    }

    #[test]
    fn without_rules_nothing_is_refused() {
        let g = guard(&[]);
        assert_eq!(
            check(&g, "SELECT upper(ssn), leak(x) FROM customers"),
            Ok(())
        );
    }
}
