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
    /// The `sql_mode` flags the session started with (what `DEFAULT` means).
    login_dialect: Dialect,
    /// The current database: what unqualified table names mean.
    pub(crate) database: String,
    /// SQL-level `PREPARE name FROM '…'`, by name.
    prepared: HashMap<String, Arc<MysqlStatement>>,
    /// Column rules whose values must not leave in an expression.
    guard: Option<Arc<MaskingEngine>>,
}

/// A statement read and ready to decide, or why it cannot be.
pub(crate) enum Reading {
    /// Analysed (an `EXECUTE` resolved to what was prepared).
    Statement(Arc<MysqlStatement>),
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
            login_dialect: dialect,
            database,
            prepared: HashMap::new(),
            guard,
        }
    }

    /// Reads a statement's text.
    pub(crate) fn read(&self, text: &str) -> Reading {
        let canonical = match sql::lexer::canonical(text, &self.dialect) {
            Ok(c) => c,
            Err(e) => return Reading::Unreadable(format!("the statement could not be read: {e}")),
        };
        let st = match sql::analyze::analyze(&canonical, text, &self.dialect) {
            Ok(st) => st,
            Err(e) => return Reading::Unreadable(e.to_string()),
        };
        let st = match &st.analysis.executes {
            Some(name) => match self.prepared.get(name) {
                Some(p) => p.clone(),
                None => {
                    return Reading::Denied(format!(
                        "EXECUTE {name}: no statement of that name was prepared through the \
                         gateway in this session"
                    ))
                }
            },
            None => Arc::new(st),
        };
        if let Some(reason) = self.flow_refusal(&st) {
            return Reading::Denied(reason);
        }
        Reading::Statement(st)
    }

    /// A masked column whose values this statement sends out without their
    /// origin (in an expression, a UNION, into a table or a file): the
    /// server's result would not say where they came from, so result
    /// masking could not find them.
    fn flow_refusal(&self, st: &MysqlStatement) -> Option<String> {
        let engine = self.guard.as_ref()?;
        let a = &st.analysis;
        let reads = |schema: &Option<String>, table: &str| {
            a.actions.iter().filter_map(|x| x.table.as_ref()).any(|t| {
                t.name.eq_ignore_ascii_case(table)
                    && schema.as_deref().is_none_or(|s| {
                        t.schema
                            .as_deref()
                            .unwrap_or(&self.database)
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

    /// The policy's decision on `st`; `approved` when a human approved
    /// exactly it. `flavour`: `simple` (a query) or `extended` (a prepared
    /// statement's execution), as PostgreSQL's protocols.
    pub(crate) fn decision(&self, st: &MysqlStatement, flavour: &str, approved: bool) -> Decision {
        let (engine, _) = self.policy.current();
        engine.decide_statements(&StatementRequest {
            identity: &self.identity,
            connection: &self.connection,
            client_ip: self.client_ip,
            now: Timestamp::now(),
            protocol: flavour,
            approved,
            statements: &[&st.analysis],
            search_path: std::slice::from_ref(&self.database),
        })
    }

    /// What the session state becomes once `st` ran.
    pub(crate) fn ran(&mut self, st: &MysqlStatement) {
        if let Some(db) = &st.uses_database {
            self.database = db.clone();
        }
        match &st.sql_mode {
            Some(SqlModeChange::Literal(mode)) => {
                crate::backend::apply_sql_mode(&mut self.dialect, mode)
            }
            Some(SqlModeChange::Default) => self.dialect = self.login_dialect,
            // Known only to the server: read back by the session.
            Some(SqlModeChange::Unknown) | None => {}
        }
        let a = &st.analysis;
        if let Some(name) = &a.prepares {
            self.prepared.insert(name.clone(), Arc::new(st.clone()));
        }
        match &a.deallocates {
            Some(Some(name)) => {
                self.prepared.remove(name);
            }
            Some(None) => self.prepared.clear(),
            None => {}
        }
    }

    /// Whether the server must be asked for `sql_mode` after `st` ran (its
    /// value was not a literal the gateway could read).
    pub(crate) fn needs_sql_mode(st: &MysqlStatement) -> bool {
        matches!(st.sql_mode, Some(SqlModeChange::Unknown))
    }

    /// The session was reset (`COM_RESET_CONNECTION`): prepared statements
    /// are gone.
    pub(crate) fn reset(&mut self) {
        self.prepared.clear();
    }

    /// Whether `st` is a `KILL` (which only the caller's own session may be).
    pub(crate) fn is_kill(st: &MysqlStatement) -> bool {
        st.analysis.operation == "kill" && st.analysis.kind == ActionKind::Admin
    }
}
