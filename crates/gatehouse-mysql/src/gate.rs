//! The gate: a statement's text → what the server will run (lexed as its
//! version and `sql_mode` lex it) → the same analysis PostgreSQL statements
//! get → the policy's decision. It keeps the session state the analysis
//! depends on: the current database (what unqualified tables mean), the
//! `sql_mode` quoting flags, and SQL-level prepared statements.

use crate::sql::{self, Dialect, MysqlStatement, SqlModeChange};
use gatehouse_core::{Identity, Timestamp};
use gatehouse_mask::{ColumnTarget, MaskingEngine};
use gatehouse_policy::{Decision, PolicyHandle, StatementRequest};
use gatehouse_sql::ActionKind;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

/// Per-session gate state.
pub(crate) struct Gate {
    policy: Arc<PolicyHandle>,
    identity: Identity,
    connection: String,
    client_ip: IpAddr,
    /// How the server lexes (its version, `sql_mode`).
    pub(crate) dialect: Dialect,
    /// The current database: what unqualified table names mean.
    pub(crate) database: String,
    /// SQL-level `PREPARE name FROM '…'`, by name, with the database that
    /// was current when it was prepared (where the server runs it).
    prepared: HashMap<String, (Arc<MysqlStatement>, String)>,
    /// Column rules whose values must not leave in an expression.
    guard: Option<Arc<MaskingEngine>>,
    /// The last statement touched a masked column: `SHOW WARNINGS`,
    /// `SHOW ERRORS` and `GET DIAGNOSTICS` are refused until another runs.
    pub(crate) warnings_guarded: bool,
}

/// Whether a statement read is itself, or what an `EXECUTE` named.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Resolved {
    /// The text's own statement.
    Itself,
    /// `EXECUTE name`: the statement prepared under the name.
    Prepared,
}

/// A statement read and ready to decide, or why it cannot be.
pub(crate) enum Reading {
    /// Analysed, with the database its unqualified tables are in.
    Statement(Arc<MysqlStatement>, String, Resolved),
    /// It could not be read exactly as the server would: refused.
    Unreadable(String),
    /// Refused by the gateway's own rules before the policy (a masked
    /// column would leave without its origin, an unknown EXECUTE).
    Denied(String),
}

impl Gate {
    pub(crate) fn new(
        policy: Arc<PolicyHandle>,
        identity: Identity,
        connection: String,
        client_ip: IpAddr,
        dialect: Dialect,
        database: String,
        guard: Option<Arc<MaskingEngine>>,
    ) -> Self {
        Self {
            policy,
            identity,
            connection,
            client_ip,
            dialect,
            database,
            prepared: HashMap::new(),
            guard,
            warnings_guarded: false,
        }
    }

    /// Reads a statement's text.
    pub(crate) fn read(&self, text: &str) -> Reading {
        let canonical = match sql::lexer::canonical(text, &self.dialect) {
            Ok(c) => c,
            Err(e) => return Reading::Unreadable(format!("the statement could not be read: {e}")),
        };
        if self.warnings_guarded && sql::is_diagnostics(&canonical) {
            return Reading::Denied(
                "the last statement touched a masked column, and its warnings and errors may \
                 quote the column's values: they are not shown"
                    .into(),
            );
        }
        let st = match sql::analyze::analyze(&canonical, text, &self.dialect) {
            Ok(st) => st,
            Err(e) => return Reading::Unreadable(e.to_string()),
        };
        let (st, database, resolved) = match &st.analysis.executes {
            Some(name) => match self.prepared.get(name) {
                Some((p, db)) => (p.clone(), db.clone(), Resolved::Prepared),
                None => {
                    return Reading::Denied(format!(
                        "EXECUTE {name}: no statement of that name was prepared through the \
                         gateway in this session"
                    ))
                }
            },
            None => (Arc::new(st), self.database.clone(), Resolved::Itself),
        };
        if let Some(SqlModeChange::Literal(mode)) = &st.sql_mode {
            let mut probe = self.dialect;
            if let Err(why) = crate::backend::apply_sql_mode(&mut probe, mode) {
                return Reading::Denied(format!("{why}; it is refused"));
            }
        }
        if let Some(reason) = self.flow_refusal(&st, &database) {
            return Reading::Denied(reason);
        }
        Reading::Statement(st, database, resolved)
    }

    /// A masked column whose values this statement sends out without their
    /// origin (in an expression, a UNION, into a table or a file): the
    /// server's result would not say where they came from, so result
    /// masking could not find them.
    pub(crate) fn flow_refusal(&self, st: &MysqlStatement, database: &str) -> Option<String> {
        let engine = self.guard.as_ref()?;
        let a = &st.analysis;
        let ruled = engine
            .rules()
            .iter()
            .any(|r| !matches!(r.target, ColumnTarget::JsonPath(_)));
        // Code the gateway cannot see into could return a ruled column in a
        // form no rule can find (as on PostgreSQL).
        if ruled
            && (a.flags.opaque_code
                || a.kind == ActionKind::Procedural
                || !a.opaque_functions.is_empty())
        {
            let what = a
                .opaque_functions
                .first()
                .map(|f| format!("the function {f}"))
                .unwrap_or_else(|| "code the gateway cannot see into".into());
            return Some(format!(
                "this connection masks columns by rule, and the statement runs {what}, which \
                 could return a masked column's values where no rule can find them"
            ));
        }
        let reads = |schema: &Option<String>, table: &str| {
            a.actions.iter().filter_map(|x| x.table.as_ref()).any(|t| {
                t.name.eq_ignore_ascii_case(table)
                    && schema.as_deref().is_none_or(|s| {
                        t.schema
                            .as_deref()
                            .unwrap_or(database)
                            .eq_ignore_ascii_case(s)
                    })
            })
        };
        for rule in engine.rules() {
            let applies = match &rule.target {
                ColumnTarget::Exact { schema, table, .. } => reads(schema, table),
                ColumnTarget::Pattern(_) => true,
                ColumnTarget::JsonPath(_) => false,
            };
            if !applies {
                continue;
            }
            let hit = a
                .columns
                .derived
                .iter()
                .find(|u| u.column == "*" || rule.target.matches_name(&u.column));
            if let Some(u) = hit {
                let what = if u.column == "*" { "*" } else { &u.column };
                return Some(format!(
                    "column rule {} masks `{what}`, and this statement sends its values out in \
                     an expression (or into a table, a file or a UNION), where the server does \
                     not report their origin and the gateway could not mask them; select the \
                     column directly",
                    rule.label
                ));
            }
        }
        None
    }

    /// Whether `st` reads a table a column rule covers (or any table,
    /// under a name-pattern rule): the server's error texts and warnings
    /// may then quote a masked value.
    pub(crate) fn touches_ruled(&self, st: &MysqlStatement, database: &str) -> bool {
        let Some(engine) = self.guard.as_ref() else {
            return false;
        };
        let tables: Vec<_> = st
            .analysis
            .actions
            .iter()
            .filter_map(|x| x.table.as_ref())
            .collect();
        engine.rules().iter().any(|r| match &r.target {
            ColumnTarget::Exact { schema, table, .. } => tables.iter().any(|t| {
                t.name.eq_ignore_ascii_case(table)
                    && schema.as_deref().is_none_or(|s| {
                        t.schema
                            .as_deref()
                            .unwrap_or(database)
                            .eq_ignore_ascii_case(s)
                    })
            }),
            ColumnTarget::Pattern(_) => !tables.is_empty(),
            ColumnTarget::JsonPath(_) => false,
        })
    }

    /// The policy's decision on `st`; `approved` when a human approved
    /// exactly it. `flavour`: `simple` (a query) or `extended` (a prepared
    /// statement's execution), as PostgreSQL's protocols.
    pub(crate) fn decision(
        &self,
        st: &MysqlStatement,
        database: &str,
        flavour: &str,
        approved: bool,
    ) -> Decision {
        let (engine, _) = self.policy.current();
        let search_path = [database.to_string()];
        engine.decide_statements(&StatementRequest {
            identity: &self.identity,
            connection: &self.connection,
            client_ip: self.client_ip,
            now: Timestamp::now(),
            protocol: flavour,
            approved,
            statements: &[&st.analysis],
            search_path: &search_path,
        })
    }

    /// What the session state becomes once `st` ran.
    pub(crate) fn ran(&mut self, st: &Arc<MysqlStatement>, resolved: Resolved) {
        if let Some(db) = &st.uses_database {
            self.database = db.clone();
        }
        let a = &st.analysis;
        // A PREPARE stores its statement with today's database; an EXECUTE
        // of it leaves it as it was prepared.
        if let (Some(name), Resolved::Itself) = (&a.prepares, resolved) {
            let entry = (st.clone(), self.database.clone());
            self.prepared.insert(name.clone(), entry);
        }
        match &a.deallocates {
            Some(Some(name)) => {
                self.prepared.remove(name);
            }
            Some(None) => self.prepared.clear(),
            None => {}
        }
    }

    /// Whether the server must be asked for `sql_mode` after `st` (which
    /// changes it: the gateway never interprets a value, since `DEFAULT`
    /// and combination modes mean what the server says), whether or not it
    /// succeeded.
    pub(crate) fn touches_sql_mode(st: &MysqlStatement) -> bool {
        st.sql_mode.is_some()
    }

    /// The session was reset (`COM_RESET_CONNECTION`): prepared statements
    /// are gone.
    pub(crate) fn reset(&mut self) {
        self.prepared.clear();
    }

    /// Whether a text reads the last statement's diagnostics (which a
    /// prepared statement may not).
    pub(crate) fn reads_diagnostics(&self, text: &str) -> bool {
        sql::lexer::canonical(text, &self.dialect).is_ok_and(|c| sql::is_diagnostics(&c))
    }

    /// Whether `st` is a `KILL` (which only the caller's own session may be).
    pub(crate) fn is_kill(st: &MysqlStatement) -> bool {
        st.analysis.operation == "kill" && st.analysis.kind == ActionKind::Admin
    }
}
