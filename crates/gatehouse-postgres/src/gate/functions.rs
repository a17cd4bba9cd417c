//! The functions a qualified name can call.
//!
//! PostgreSQL reads `x.f` as the column `f` of `x` when `x` has one, and
//! otherwise as the call `f(x)` (attribute notation): `s.nextval` advances a
//! sequence, `c.to_json` returns a whole row. The syntax alone cannot tell
//! the two apart, so the gateway keeps, per connection, the names of the
//! database's functions callable with one argument, read from `pg_proc`
//! through the backend login, and treats a qualified name that is one of
//! them as that call: an opaque function (a `function` action the policy
//! must allow) when the gateway cannot see into it, and a whole-row use of
//! `x` when the function takes a whole row (which column masking refuses
//! under its rules). A column named like such a function is refused as the
//! call would be: the safe side.
//!
//! The list is read at most every [`FUNCTIONS_TTL`] and again after a
//! schema change through the gateway. A function created elsewhere within
//! that time is not yet known; so the list also holds every column name of
//! the database, and a qualified name over a table that is neither a known
//! column name nor a known function is refused until the list is read
//! again (docs/security.md).

use gatehouse_sql::{Action, ActionKind, AttributeUse, ColumnUse, StatementAnalysis};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a connection's function list is used before it is read again.
pub(crate) const FUNCTIONS_TTL: Duration = Duration::from_secs(30);

/// What the list query returns: one text per function, `<origin><row><name>`
/// (`u`ser or `b`uilt-in; `r` when its argument can be a whole row, else `-`),
/// one per relation of `pg_catalog`, `c-<name>`, and one per column of every
/// relation (system columns too), `a-` then the schema and the relation
/// name, each as `<characters>:<name>`, then the column's name.
pub(crate) const FUNCTIONS_QUERY: &str =
    "SELECT (CASE WHEN n.nspname = 'pg_catalog' THEN 'b' ELSE 'u' END \
     || CASE WHEN t.typtype IN ('c', 'p') THEN 'r' ELSE '-' END || p.proname)::text \
     FROM pg_catalog.pg_proc p \
     JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace \
     JOIN pg_catalog.pg_type t ON t.oid = p.proargtypes[0] \
     WHERE p.prokind = 'f' AND p.pronargs >= 1 AND p.pronargs - p.pronargdefaults <= 1 \
     UNION ALL \
     SELECT ('c-' || c.relname)::text FROM pg_catalog.pg_class c \
     WHERE c.relnamespace = 'pg_catalog'::pg_catalog.regnamespace \
     AND c.relkind IN ('r', 'v', 'm', 'p', 'f') \
     UNION ALL \
     SELECT ('a-' || pg_catalog.length(n.nspname) || ':' || n.nspname \
     || pg_catalog.length(c.relname) || ':' || c.relname || a.attname)::text \
     FROM pg_catalog.pg_attribute a \
     JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
     WHERE NOT a.attisdropped AND c.relkind IN ('r', 'v', 'm', 'p', 'f')";

/// A connection's functions callable with one argument, by name.
#[derive(Debug, Default)]
pub struct FunctionNames {
    /// Ones the gateway cannot see into: every function outside
    /// `pg_catalog`, and built-ins off the side-effect-free list.
    opaque: HashSet<String>,
    /// Ones whose argument can be a whole row (record, polymorphic, composite).
    whole_row: HashSet<String>,
    /// Relations of `pg_catalog`: an unqualified name of one means it, since
    /// the server searches `pg_catalog` before the search path.
    catalog_relations: HashSet<String>,
    /// Every function callable with one argument.
    functions: HashSet<String>,
    /// Every relation's columns: schema -> relation -> column names.
    columns: HashMap<String, HashMap<String, HashSet<String>>>,
}

impl FunctionNames {
    /// Reads the rows of [`FUNCTIONS_QUERY`].
    pub(crate) fn from_rows(rows: Vec<String>) -> Self {
        let mut names = FunctionNames::default();
        for row in rows {
            // Two ASCII markers, then the name: anything else from the
            // backend is skipped (never sliced inside a character).
            let (Some(&[origin, row_kind]), Some(name)) = (row.as_bytes().get(..2), row.get(2..))
            else {
                continue;
            };
            let (origin, row_kind) = (char::from(origin), char::from(row_kind));
            let name = name.to_string();
            match origin {
                'c' => {
                    names.catalog_relations.insert(name);
                    continue;
                }
                'a' => {
                    if let Some((schema, rest)) = counted(&name) {
                        if let Some((table, column)) = counted(rest) {
                            names
                                .columns
                                .entry(schema.to_string())
                                .or_default()
                                .entry(table.to_string())
                                .or_default()
                                .insert(column.to_string());
                        }
                    }
                    continue;
                }
                _ => {
                    names.functions.insert(name.clone());
                }
            }
            if row_kind == 'r' {
                names.whole_row.insert(name.clone());
            }
            if origin == 'u' || !gatehouse_sql::is_safe_function(&name) {
                names.opaque.insert(name);
            }
        }
        names
    }

    /// Whether `f` in `a.f` can be a call: when `a` names a table, a
    /// subquery or a CTE, its argument would be a whole row, so only a
    /// function taking one can be meant (`c.name` is a column, not `name(c)`,
    /// which PostgreSQL does not read into a row); after a function in FROM
    /// or an expression, any one-argument function can.
    fn calls(&self, st: &StatementAnalysis, a: &AttributeUse) -> bool {
        if self.whole_row.contains(&a.name) {
            return true;
        }
        if !self.opaque.contains(&a.name) {
            return false;
        }
        let Some(q) = &a.qualifier else {
            return true;
        };
        let mut relations = st
            .columns
            .relations
            .iter()
            .filter(|r| &r.name == q)
            .peekable();
        // An unknown qualifier (an outer query's, a schema's) counts as a possible call.
        relations.peek().is_none() || relations.any(|r| r.function)
    }

    /// A qualified name over a table (`o.f` with `o` a table of the
    /// statement) that is not a column of that table (in any schema the
    /// name may mean, `search_path` for an unqualified one) nor a function
    /// the list knows: created since the list was read, the server may call
    /// it. A relation the list does not know is not judged (the server
    /// finds it, or fails).
    pub(crate) fn unknown_attribute<'a>(
        &self,
        st: &'a StatementAnalysis,
        search_path: &[String],
    ) -> Option<&'a AttributeUse> {
        // A list read without columns knows none.
        if self.columns.is_empty() {
            return None;
        }
        st.attributes.iter().find(|a| {
            if self.functions.contains(&a.name) {
                return false;
            }
            let Some(q) = &a.qualifier else {
                return false;
            };
            st.columns
                .relations
                .iter()
                .filter(|r| &r.name == q && !r.function)
                .filter_map(|r| r.table.as_ref())
                .any(|t| {
                    let schemas: Vec<&str> = match &t.schema {
                        Some(s) => vec![s.as_str()],
                        None => search_path
                            .iter()
                            .map(String::as_str)
                            .chain(["pg_catalog", "public"])
                            .collect(),
                    };
                    // Every relation the name may mean must have the column.
                    schemas
                        .iter()
                        .filter_map(|s| self.columns.get(*s)?.get(&t.name))
                        .any(|cols| !cols.contains(&a.name))
                })
        })
    }

    /// An unqualified table of `pg_catalog`'s name (`pg_stat_activity`).
    fn catalog_relation(&self, t: &gatehouse_sql::TableRef) -> bool {
        t.schema.is_none() && self.catalog_relations.contains(&t.name)
    }

    /// `st` with its qualified names that are function calls counted as such,
    /// and its unqualified names of `pg_catalog` relations qualified (the
    /// same `Arc` when there are none).
    /// `catalog_first`: the session searches `pg_catalog` first (it is not
    /// placed later in its search path, where other schemas would shadow it).
    pub(crate) fn resolve(
        &self,
        st: Arc<StatementAnalysis>,
        catalog_first: bool,
    ) -> Arc<StatementAnalysis> {
        let catalog = catalog_first
            && st
                .actions
                .iter()
                .filter_map(|a| a.table.as_ref())
                .any(|t| self.catalog_relation(t));
        if !catalog && !st.attributes.iter().any(|a| self.calls(&st, a)) {
            return st;
        }
        let mut st = (*st).clone();
        for t in st.actions.iter_mut().filter_map(|a| a.table.as_mut()) {
            if catalog && self.catalog_relation(t) {
                t.schema = Some("pg_catalog".into());
            }
        }
        for t in st
            .columns
            .relations
            .iter_mut()
            .filter_map(|r| r.table.as_mut())
        {
            if catalog && self.catalog_relation(t) {
                t.schema = Some("pg_catalog".into());
            }
        }
        for a in std::mem::take(&mut st.attributes) {
            if !self.calls(&st, &a) {
                st.attributes.push(a);
                continue;
            }
            if self.opaque.contains(&a.name) {
                if !st.opaque_functions.contains(&a.name) {
                    st.opaque_functions.push(a.name.clone());
                }
                if !st.functions.contains(&a.name) {
                    st.functions.push(a.name.clone());
                }
                let call = Action {
                    kind: ActionKind::Function,
                    table: None,
                    has_where: None,
                };
                if !st.actions.contains(&call) {
                    st.actions.push(call);
                }
                st.kind = st.kind.max(ActionKind::Function);
            }
            if self.whole_row.contains(&a.name) {
                // The whole row of the qualifier leaves without an origin.
                st.columns.derived.push(ColumnUse {
                    qualifier: a.qualifier.clone(),
                    column: "*".into(),
                });
            }
            st.attributes.push(a);
        }
        Arc::new(st)
    }
}

/// `<n>:<name><rest>` as (name, rest), `n` counting characters.
fn counted(s: &str) -> Option<(&str, &str)> {
    let (n, rest) = s.split_once(':')?;
    let n: usize = n.parse().ok()?;
    let end = rest.char_indices().nth(n).map_or(rest.len(), |(i, _)| i);
    (rest.chars().count() >= n).then(|| rest.split_at(end))
}

/// A connection's list with when it was read and under which schema generation.
struct ReadList {
    at: Instant,
    generation: u64,
    names: Arc<FunctionNames>,
}

/// Every connection's function list, shared by its sessions.
#[derive(Default)]
pub struct FunctionCatalog {
    lists: Mutex<HashMap<String, ReadList>>,
    /// Bumped by a schema change through the gateway: every list is stale.
    generation: AtomicU64,
}

impl FunctionCatalog {
    /// The list of `connection`, if read recently and since the last schema change.
    pub(crate) fn current(&self, connection: &str) -> Option<Arc<FunctionNames>> {
        let generation = self.generation.load(Ordering::Acquire);
        let lists = self.lists.lock().unwrap_or_else(|p| p.into_inner());
        lists
            .get(connection)
            .filter(|l| l.generation == generation && l.at.elapsed() < FUNCTIONS_TTL)
            .map(|l| l.names.clone())
    }

    /// Keeps a list just read.
    pub(crate) fn store(&self, connection: &str, names: Arc<FunctionNames>) {
        let generation = self.generation.load(Ordering::Acquire);
        let mut lists = self.lists.lock().unwrap_or_else(|p| p.into_inner());
        lists.insert(
            connection.to_string(),
            ReadList {
                at: Instant::now(),
                generation,
                names,
            },
        );
    }

    /// A schema change ran through the gateway (it may have created a function).
    pub(crate) fn schema_changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Rows come from the backend: any text is read without panicking.
        #[test]
        fn any_backend_row_is_read_without_panicking(rows in prop::collection::vec(".{0,12}", 0..20)) {
            let _ = FunctionNames::from_rows(rows);
        }

        /// Column rows (`a-<n>:<schema><n>:<table><column>`) with any counts
        /// and text, wide characters too: read or skipped, never a panic.
        #[test]
        fn any_column_row_is_read_without_panicking(rows in prop::collection::vec("a-[0-9]{0,3}:.{0,6}[0-9]{0,2}:?.{0,8}", 0..20)) {
            let _ = FunctionNames::from_rows(rows);
        }
    }

    #[test]
    fn a_row_starting_with_a_wide_character_is_skipped() {
        let names = FunctionNames::from_rows(vec!["éx".into(), "uxf".into()]);
        assert!(!names.opaque.is_empty());
    }

    #[test]
    fn a_name_over_a_table_that_is_neither_column_nor_function_is_unknown() {
        let names = FunctionNames::from_rows(vec![
            "b-lower".into(),
            "a-6:public6:ordersid".into(),
            "a-6:public6:ordersnote".into(),
            "a-6:public6:ordersctid".into(),
            "a-6:secret6:ordersid".into(),
            "a-6:public4:ünïnote".into(),
        ]);
        let path = ["public".to_string()];
        let unknown = |sql: &str| {
            let a = gatehouse_sql::analyze_uncached(sql, Default::default()).unwrap();
            names
                .unknown_attribute(&a.statements[0], &path)
                .map(|a| a.name.clone())
        };
        // A column of another table is not a column of this one.
        assert_eq!(
            unknown("SELECT u.note FROM secret.orders u"),
            Some("note".into())
        );
        assert_eq!(
            unknown("SELECT x.note FROM ünï x"),
            None,
            "names count characters"
        );
        assert_eq!(
            unknown("SELECT x.note FROM nowhere x"),
            None,
            "an unknown table is not judged"
        );
        assert_eq!(
            unknown("SELECT o.purge FROM orders o"),
            Some("purge".into())
        );
        assert_eq!(unknown("SELECT o.id, o.note, o.ctid FROM orders o"), None);
        assert_eq!(
            unknown("SELECT o.lower FROM orders o"),
            None,
            "a known function"
        );
        // A subquery's or a function's output names are its own.
        assert_eq!(unknown("SELECT s.x FROM (SELECT 1 AS x) s"), None);
        assert_eq!(unknown("SELECT g.g FROM generate_series(1, 2) g"), None);
        // A list read without column names knows none: nothing is unknown.
        let old = FunctionNames::from_rows(vec!["b-lower".into()]);
        let a = gatehouse_sql::analyze_uncached("SELECT o.purge FROM orders o", Default::default())
            .unwrap();
        assert!(old.unknown_attribute(&a.statements[0], &path).is_none());
    }

    #[test]
    fn a_qualified_name_that_is_a_function_counts_as_the_call() {
        let names = FunctionNames::from_rows(vec![
            "b-nextval".into(),
            "brto_json".into(),
            "b-lower".into(),
            "b-oid".into(),
            "urfull_name".into(),
            "c-pg_stat_activity".into(),
        ]);
        let analyze = |sql: &str| {
            let a = gatehouse_sql::analyze_uncached(sql, Default::default()).unwrap();
            names.resolve(Arc::new(a.statements[0].clone()), true)
        };
        let st = analyze("SELECT s.nextval FROM cast('orders_id_seq' AS regclass) s");
        assert_eq!(st.opaque_functions, ["nextval"]);
        assert!(st.actions.iter().any(|a| a.kind == ActionKind::Function));
        assert_eq!(st.kind, ActionKind::Function);
        let st = analyze("SELECT c.to_json FROM customers c");
        assert!(
            st.opaque_functions.is_empty(),
            "to_json is side-effect free"
        );
        assert!(st
            .columns
            .derived
            .iter()
            .any(|u| u.qualifier.as_deref() == Some("c") && u.column == "*"));
        let st = analyze("SELECT c.full_name FROM customers c");
        assert_eq!(st.opaque_functions, ["full_name"]);
        let st = analyze("SELECT query FROM pg_stat_activity");
        assert_eq!(
            st.actions[0].table.as_ref().unwrap().schema.as_deref(),
            Some("pg_catalog"),
            "the server finds it in pg_catalog first"
        );
        let st = analyze("SELECT c.oid, c.relname FROM pg_class c");
        assert!(
            st.opaque_functions.is_empty(),
            "a table's c.oid is its column"
        );
        let plain = Arc::new(
            gatehouse_sql::analyze_uncached(
                "SELECT c.lower, c.id FROM customers c",
                Default::default(),
            )
            .unwrap()
            .statements[0]
                .clone(),
        );
        assert!(Arc::ptr_eq(&names.resolve(plain.clone(), true), &plain));
    }
}
