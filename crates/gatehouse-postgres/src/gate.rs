//! The gate: every statement a client sends is analyzed and decided before
//! any of it reaches the backend.
//!
//! A refused statement is not dropped from the stream but replaced by a
//! *poison* message that fails at parse time on the backend and contains
//! nothing of the statement. The backend then behaves exactly as if the
//! statement had failed: it aborts the transaction block or the extended
//! protocol batch, skips to Sync, and answers every earlier message in order.
//! The tracker swaps the backend's error for the gateway's refusal, so the
//! client sees why, at the right place in the stream.

pub(crate) use crate::hold::{Hold, HoldOutcome};
use crate::mask::ColumnGuard;
use gatehouse_core::{Decided, DecidedIn, DecisionRecord, Identity, Timestamp};
use gatehouse_policy::{Decision, PolicyHandle, PolicyMode, StatementRequest};
use gatehouse_session::Session;
use gatehouse_sql::{ActionKind, Analyzer, ParseMode, SettingValue, StatementAnalysis};
use search_path::SearchPath;
use std::borrow::Cow;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

mod approval;
mod decide;
pub(crate) mod functions;
mod poison;
mod reading;
mod refuse;
mod search_path;
pub(crate) mod settings;
mod verdict;
mod verdicts;

pub(crate) use poison::{
    poison_bind, poison_execute, poison_function_call, poison_parse, poison_query, RESERVED_PREFIX,
};
pub(crate) use verdict::{Flavour, Prepared, Verdict};

use verdicts::VerdictCache;

/// What every session's gate shares.
#[derive(Clone)]
pub struct GateSettings {
    /// Statement analysis with its cache.
    pub analyzer: Arc<Analyzer>,
    /// The policy in force.
    pub policy: Arc<PolicyHandle>,
    /// Every connection's functions a qualified name can call.
    pub functions: Arc<functions::FunctionCatalog>,
}

/// Per-session gate state.
pub(crate) struct Gate {
    settings: GateSettings,
    identity: Identity,
    connection: String,
    client_ip: IpAddr,
    /// SQL-level `PREPARE name AS …`.
    sql_prepared: HashMap<String, Arc<StatementAnalysis>>,
    /// Verdicts by statement text, for policies that do not read the time:
    /// everything else a decision depends on is fixed for the session.
    /// One map per protocol, since the protocol is part of the policy context.
    verdicts: [VerdictCache; 2],
    /// Column masking rules that apply to this session.
    column_guard: Option<ColumnGuard>,
    /// What the caller said with `SET gatehouse.reason = '…'`, for approval requests.
    reason: Option<String>,
    /// Where unqualified table names may resolve (`search_path.rs`).
    search_path: SearchPath,
    /// Bumped when the search path grows: statements prepared before are
    /// decided again at their next Execute (the server re-plans them).
    path_generation: u64,
    /// The backend login's user: what `$user` in a search path means.
    backend_user: String,
    /// The connection's functions a qualified name can call.
    function_names: Arc<functions::FunctionNames>,
    /// The session statements that need approval are filed from (none:
    /// they are refused, as at login).
    session: Option<Session>,
}

/// The session variable a caller states its reason in (PostgreSQL accepts
/// any dotted name as a custom setting, so the backend takes it too).
const REASON_VARIABLE: &str = "gatehouse.reason";
/// Longest reason kept.
const MAX_REASON: usize = 500;

impl Gate {
    pub(crate) fn new(
        settings: GateSettings,
        identity: Identity,
        connection: String,
        client_ip: IpAddr,
    ) -> Self {
        Self {
            settings,
            identity,
            connection,
            client_ip,
            sql_prepared: HashMap::new(),
            verdicts: Default::default(),
            column_guard: None,
            reason: None,
            search_path: SearchPath::Known(Vec::new()),
            path_generation: 0,
            backend_user: String::new(),
            function_names: Arc::default(),
            session: None,
        }
    }

    /// Files statements that need approval from `session`.
    pub(crate) fn set_session(&mut self, session: Session) {
        self.session = Some(session);
    }

    /// The connection's functions, as read at login.
    pub(crate) fn set_function_names(&mut self, names: Arc<functions::FunctionNames>) {
        self.function_names = names;
    }

    /// The search path the backend session started with, and its login user.
    pub(crate) fn set_search_path(&mut self, login: Vec<String>, backend_user: &str) {
        self.search_path = SearchPath::Known(login);
        self.backend_user = backend_user.to_string();
    }

    /// The search path once `statements` ran: the session's, grown by their
    /// changes of it (borrowed when they change nothing).
    fn path_after(&self, statements: &[Arc<StatementAnalysis>]) -> Cow<'_, SearchPath> {
        let mut path = Cow::Borrowed(&self.search_path);
        // A temporary relation: the server searches the session's temporary
        // schema first, so an unqualified name may now mean one there too
        // (for good: the path only grows).
        if statements.iter().any(|s| s.flags.temporary) {
            path = Cow::Owned(path.with_temporary());
        }
        for change in statements.iter().flat_map(|s| s.settings.iter()) {
            match change.name.as_deref() {
                Some("search_path") => {
                    path = Cow::Owned(path.changed(&change.value, &self.backend_user))
                }
                // Another role: `$user` in the path may mean another schema.
                Some("role" | "session_authorization") => {
                    path = Cow::Owned(path.changed_user(&change.value))
                }
                // set_config with a computed name may have changed it.
                None => path = Cow::Owned(SearchPath::Unknown),
                Some(_) => {}
            }
        }
        path
    }

    /// Applies column masking rules to this session's statements.
    pub(crate) fn set_column_guard(&mut self, guard: Option<ColumnGuard>) {
        self.column_guard = guard;
    }

    /// Whether statements that need approval can be filed from this session.
    pub(crate) fn takes_approvals(&self) -> bool {
        self.session.as_ref().is_some_and(Session::takes_approvals)
    }

    /// What a statement's decision depends on besides its text: the policy
    /// in force, the session's search path and the found sensitive columns
    /// (one number: the policy's generation high; the other two only grow,
    /// so their sum changes whenever either does).
    pub(crate) fn generation(&self) -> u64 {
        self.generation_under(self.settings.policy.generation())
    }

    /// [`generation`](Self::generation) with the policy's generation given.
    fn generation_under(&self, policy: u64) -> u64 {
        let found = self
            .column_guard
            .as_ref()
            .map_or(0, ColumnGuard::generation);
        (policy << 32) | (self.path_generation.wrapping_add(found) & 0xffff_ffff)
    }

    /// Decides a query string (simple protocol) or a Parse (extended).
    /// Returns the verdict and, for a single-statement text, its analysis.
    pub(crate) fn decide_text(
        &mut self,
        sql: &str,
        protocol: Flavour,
    ) -> (Verdict, Option<Arc<StatementAnalysis>>) {
        let (engine, policy) = self.settings.policy.current();
        let generation = self.generation_under(policy);
        let slot = usize::from(protocol != Flavour::Simple);
        if let Some(hit) = self.verdicts[slot].get(sql, generation) {
            return hit;
        }
        let (verdict, single, cacheable) = self.decide_text_uncached(sql, protocol);
        if cacheable && !engine.uses_time() {
            self.verdicts[slot].insert(sql, generation, verdict.clone(), single.clone());
        }
        (verdict, single)
    }

    /// Decides already analyzed statements (a re-check at Execute after a policy reload,
    /// or a FunctionCall).
    pub(crate) fn decide(
        &self,
        statements: &[Arc<StatementAnalysis>],
        protocol: Flavour,
    ) -> Verdict {
        let decision = self.decision(statements, protocol, false);
        self.checked(statements, self.verdict(decision))
    }

    /// Adds what column masking and schema changes say to a policy verdict.
    fn checked(&self, statements: &[Arc<StatementAnalysis>], mut verdict: Verdict) -> Verdict {
        // Pinned settings hold in every policy mode: they are what makes the
        // gateway's reading of the next statement the server's.
        let pinned = statements
            .iter()
            .flat_map(|s| s.settings.iter())
            .find_map(settings::refused_change);
        if let Some(reason) = pinned {
            return self.settings_refusal(reason);
        }
        if let Some(cap) = verdict
            .row_cap
            .clone()
            .filter(|_| verdict.refusal.is_none())
        {
            match capped_at_run_time(statements, cap.rows) {
                Ok(true) => {}
                Ok(false) => verdict.row_cap = None,
                Err(why) => {
                    let reason = format!(
                        "policy `{}` caps the rows one statement may change at {} (@max_rows), \
                         and {why}",
                        cap.policy, cap.rows
                    );
                    return self.refuse_reason(Decided::Deny, vec![cap.policy.clone()], reason);
                }
            }
        }
        if verdict.refusal.is_none() {
            if let Some(guard) = self.column_guard.as_ref().filter(|g| g.applies()) {
                if let Some(view) = statements.iter().find_map(|s| reads_column_statistics(s)) {
                    return self.masking_refusal(format!(
                        "column masking applies (column rules, or columns found sensitive), and `{view}` shows sample values of columns \
                         (most common values, histogram bounds), masked ones too"
                    ));
                }
                if let Err(reason) = statements.iter().try_for_each(|s| guard.check(s)) {
                    return self.masking_refusal(reason);
                }
            }
        }
        verdict.changes_schema = statements
            .iter()
            .any(|s| s.actions.iter().any(|a| a.kind == ActionKind::Ddl));
        let functions_changed = statements.iter().any(|s| {
            matches!(
                s.operation.as_str(),
                "create_function"
                    | "alter_function"
                    | "drop"
                    | "rename"
                    | "alter_owner"
                    | "alter_object_schema"
                    | "create_extension"
                    | "alter_extension"
                    | "alter_extension_contents"
            )
        });
        if functions_changed && verdict.refusal.is_none() {
            // It may create, drop or rename a function a qualified name calls.
            self.settings.functions.schema_changed();
        }
        verdict
    }

    fn verdict(&self, decision: Decision) -> Verdict {
        let mode = self.settings.policy.mode();
        let policies = decision.policies().to_vec();
        match (decision, mode) {
            (Decision::Allow { row_cap, .. }, mode) => {
                let mut v = Verdict::allowed(policies, mode.recorded());
                // Audit mode lets everything through: no cap either.
                v.row_cap = row_cap.filter(|_| mode == PolicyMode::Enforce);
                v
            }
            (Decision::Deny { reason, .. }, PolicyMode::Audit) => {
                self.shadow(Decided::ShadowDeny, policies, reason)
            }
            (Decision::Review { reason, .. }, PolicyMode::Audit) => {
                self.shadow(Decided::ShadowReview, policies, reason)
            }
            (Decision::Deny { reason, .. }, PolicyMode::Enforce) => {
                self.refuse_reason(Decided::Deny, policies, reason)
            }
            (Decision::Review { reason, routes, .. }, PolicyMode::Enforce) => {
                let reason = format!("{reason} from route {}", routes.join(" or "));
                let mut v = self.refuse_reason(Decided::Review, policies, reason);
                v.review_routes = routes;
                v
            }
        }
    }

    fn shadow(&self, decision: Decided, policies: Vec<String>, reason: String) -> Verdict {
        tracing::info!(identity = %self.identity.subject, decision = decision.as_str(), %reason, "audit mode: letting through a statement the policy refuses");
        Verdict::decided(
            DecisionRecord {
                decision,
                policies,
                mode: DecidedIn::Audit,
                reason: Some(reason),
            },
            None,
        )
    }

    /// A SQL `PREPARE` the server did: its name holds it from now on.
    pub(crate) fn sql_prepared_done(&mut self, prepared: &Arc<StatementAnalysis>) {
        if let Some(name) = &prepared.prepares {
            self.sql_prepared.insert(name.clone(), prepared.clone());
        }
    }

    /// Forgets a SQL-prepared name (`None`: all of them).
    pub(crate) fn forget_sql_prepared(&mut self, name: Option<&str>) {
        match name {
            Some(n) => {
                self.sql_prepared.remove(n);
            }
            None => self.sql_prepared.clear(),
        }
    }

    /// A statement made by SQL `PREPARE` in this session.
    pub(crate) fn sql_prepared(&self, name: &str) -> Option<Arc<StatementAnalysis>> {
        self.sql_prepared.get(name).cloned()
    }
}

/// Catalog views and functions that show values of any column (ANALYZE's
/// samples): under column rules they would show masked columns' values.
const COLUMN_STATISTICS: &[&str] = &[
    "pg_stats",
    "pg_statistic",
    "pg_stats_ext",
    "pg_stats_ext_exprs",
    "pg_statistic_ext_data",
];

/// The statistics view or function `st` reads, if any (by name in any
/// schema: a user's table of that name is refused too, the safe side).
fn reads_column_statistics(st: &StatementAnalysis) -> Option<String> {
    let table = st
        .actions
        .iter()
        .filter_map(|a| a.table.as_ref())
        .chain(st.columns.relations.iter().filter_map(|r| r.table.as_ref()))
        .find(|t| COLUMN_STATISTICS.contains(&t.name.as_str()))
        .map(|t| t.name.clone());
    table.or_else(|| {
        st.functions
            .iter()
            .find(|f| f.rsplit('.').next() == Some("pg_mcv_list_items"))
            .cloned()
    })
}

/// How statements under a row cap of `cap` rows are held to it: `Ok(false)`
/// when every write is bounded before it runs (an `INSERT … VALUES` of at
/// most `cap` rows, a PREPARE), `Ok(true)` when its command tag must be
/// counted (one plain write, alone), `Err(why not)` when it is refused.
fn capped_at_run_time(statements: &[Arc<StatementAnalysis>], cap: u64) -> Result<bool, String> {
    const ALONE: &str = "the gateway could not count and undo its changes; send the write \
                         alone, as a plain INSERT, UPDATE, DELETE or MERGE";
    let mut counted = Vec::new();
    for st in statements {
        if !st.actions.iter().any(|a| a.kind.changes_rows()) {
            continue;
        }
        match st.values_rows {
            Some(n) if n <= cap => {}
            Some(n) => {
                return Err(format!(
                    "this INSERT writes {n} rows; insert at most {cap} rows per statement"
                ))
            }
            None => counted.push(st),
        }
    }
    match counted[..] {
        [] => Ok(false),
        [_] if statements.len() > 1 => Err(format!(
            "the write is one of several statements in one query, so {ALONE}"
        )),
        // A PREPARE changes nothing; an EXECUTE of it is tagged as the
        // statement it runs (both carry the prepared statement's analysis).
        [st] if !matches!(
            st.operation.as_str(),
            "insert" | "update" | "delete" | "merge" | "copy" | "prepare"
        ) =>
        {
            Err(format!(
                "its writes are inside another statement (EXPLAIN ANALYZE, a WITH, a \
                 function), so {ALONE}"
            ))
        }
        [st] if st.flags.data_modifying_cte => {
            Err(format!("it writes in a WITH as well, so {ALONE}"))
        }
        [_] => Ok(true),
        _ => Err(format!("the query holds several writes, so {ALONE}")),
    }
}
