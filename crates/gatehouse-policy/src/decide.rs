//! Turning a request into Cedar requests and Cedar answers into a [`Decision`].

use crate::{Decision, PolicyEngine, RowCap};
use cedar_policy::{
    Authorizer, Context, Entities, Entity, EntityId, EntityTypeName, EntityUid, Request, Response,
    RestrictedExpression,
};

use gatehouse_core::{Identity, IdentitySource, Timestamp};
use gatehouse_sql::{ActionKind, StatementAnalysis, TableRef};
use std::collections::{BTreeSet, HashSet};
use std::net::IpAddr;

/// Schema used for unqualified table names.
const DEFAULT_SCHEMA: &str = "public";

/// Who wants to open a connection, from where, when.
pub struct ConnectRequest<'a> {
    /// The caller.
    pub identity: &'a Identity,
    /// The connection name.
    pub connection: &'a str,
    /// Its kind: `postgres`, `http`, `mcp`.
    pub kind: &'a str,
    /// The caller's address.
    pub client_ip: IpAddr,
    /// Now.
    pub now: Timestamp,
}

/// Who runs which statements, where, from where, when.
pub struct StatementRequest<'a> {
    /// The caller.
    pub identity: &'a Identity,
    /// The connection name.
    pub connection: &'a str,
    /// The caller's address.
    pub client_ip: IpAddr,
    /// Now.
    pub now: Timestamp,
    /// `simple`, `extended` or `function_call`.
    pub protocol: &'a str,
    /// Whether a human approved exactly this statement.
    pub approved: bool,
    /// The statements (several for a multi-statement simple query); decided together.
    pub statements: &'a [&'a StatementAnalysis],
    /// The schemas an unqualified table name may resolve to in the session
    /// (empty: `public`). Each is decided: all must allow.
    pub search_path: &'a [String],
}

/// Every qualified name an action's table may mean: itself when qualified,
/// else one per schema of the search path.
fn candidates<'a>(t: &'a TableRef, search_path: &'a [String]) -> Vec<(&'a str, String)> {
    match &t.schema {
        Some(schema) => vec![(schema.as_str(), format!("{schema}.{}", t.name))],
        None if search_path.is_empty() => {
            vec![(DEFAULT_SCHEMA, format!("{DEFAULT_SCHEMA}.{}", t.name))]
        }
        None => search_path
            .iter()
            .map(|schema| (schema.as_str(), format!("{schema}.{}", t.name)))
            .collect(),
    }
}

pub(crate) fn uid(ty: &EntityTypeName, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(ty.clone(), EntityId::new(id))
}

pub(crate) fn s(v: &str) -> RestrictedExpression {
    RestrictedExpression::new_string(v.to_string())
}

pub(crate) fn set<'a>(items: impl IntoIterator<Item = &'a str>) -> RestrictedExpression {
    RestrictedExpression::new_set(items.into_iter().map(s))
}

/// The principal's tags: an OIDC token's copied claims, plus `issuer`,
/// `client_id` and the delegation (`actor`, `actor_chain`, `on_behalf_of`).
/// Fixed names win over a copied claim of the same name.
fn identity_tags(identity: &Identity) -> Vec<(String, RestrictedExpression)> {
    let IdentitySource::Oidc(o) = &identity.source else {
        return Vec::new();
    };
    const FIXED: &[&str] = &[
        "issuer",
        "client_id",
        "actor",
        "actor_chain",
        "on_behalf_of",
    ];
    let mut tags: Vec<(String, RestrictedExpression)> = Vec::with_capacity(o.claims.len() + 5);
    tags.extend(
        o.claims
            .iter()
            .filter(|(k, _)| !FIXED.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), s(v))),
    );
    tags.push(("issuer".into(), s(&o.issuer)));
    if let Some(c) = &o.client_id {
        tags.push(("client_id".into(), s(c)));
    }
    if let Some(d) = &o.delegation {
        if let Some(first) = d.actors.first() {
            tags.push(("actor".into(), s(&first.sub)));
            tags.push(("actor_chain".into(), s(&d.actor_chain())));
        }
        if let Some(obo) = &d.on_behalf_of {
            tags.push(("on_behalf_of".into(), s(obo)));
        }
    }
    tags
}

/// Identities whose principal entities an engine keeps (then it starts over).
const PRINCIPALS_CACHED: usize = 1024;

pub(crate) struct Built {
    pub(crate) principal: EntityUid,
    pub(crate) connection: EntityUid,
    pub(crate) entities: Vec<Entity>,
}

impl PolicyEngine {
    pub(crate) fn base_entities(
        &self,
        identity: &Identity,
        connection: &str,
        kind: &str,
    ) -> Result<Built, String> {
        let principal = uid(&self.names.identity, &identity.subject);
        let mut entities = self.principal_entities(identity, &principal)?;
        let conn = uid(&self.names.connection, connection);
        entities.push(
            Entity::new(
                conn.clone(),
                [
                    ("name".to_string(), s(connection)),
                    ("kind".to_string(), s(kind)),
                ]
                .into(),
                HashSet::new(),
            )
            .map_err(|e| e.to_string())?,
        );
        Ok(Built {
            principal,
            connection: conn,
            entities,
        })
    }

    /// The principal (attributes, tags, parents) and its groups, from the
    /// engine's cache when this identity was seen before.
    fn principal_entities(
        &self,
        identity: &Identity,
        principal: &EntityUid,
    ) -> Result<Vec<Entity>, String> {
        // Locks are held only to clone a value; a poisoned map is still a valid cache.
        let cached = || {
            self.cache
                .principals
                .lock()
                .unwrap_or_else(|p| p.into_inner())
        };
        if let Some(hit) = cached().get(identity) {
            return Ok(hit.clone());
        }
        let groups: Vec<EntityUid> = identity
            .groups
            .iter()
            .map(|g| uid(&self.names.group, g))
            .collect();
        let source = match identity.source {
            IdentitySource::ServiceToken { .. } => "service_token",
            IdentitySource::Oidc(_) => "oidc",
        };
        let mut entities = Vec::with_capacity(groups.len() + 2);
        entities.push(
            Entity::new_with_tags(
                principal.clone(),
                [
                    ("subject".to_string(), s(&identity.subject)),
                    ("source".to_string(), s(source)),
                ],
                groups.iter().cloned(),
                identity_tags(identity),
            )
            .map_err(|e| e.to_string())?,
        );
        entities.extend(
            groups
                .into_iter()
                .map(|g| Entity::new_no_attrs(g, HashSet::new())),
        );
        let mut cache = cached();
        if cache.len() >= PRINCIPALS_CACHED {
            cache.clear();
        }
        cache.insert(identity.clone(), entities.clone());
        Ok(entities)
    }

    pub(crate) fn time_pairs(
        &self,
        now: Timestamp,
        client_ip: IpAddr,
    ) -> Vec<(String, RestrictedExpression)> {
        let ms = now.unix_millis();
        let ip = {
            // Locks are held only to clone a value; a poisoned map is still a valid cache.
            let mut ips = self.cache.ips.lock().unwrap_or_else(|p| p.into_inner());
            if ips.len() > 4096 {
                ips.clear();
            }
            ips.entry(client_ip)
                .or_insert_with(|| RestrictedExpression::new_ip(client_ip.to_string()))
                .clone()
        };
        let second = ms.div_euclid(1000);
        let now_expr = {
            let mut cached = self.cache.second.lock().unwrap_or_else(|p| p.into_inner());
            match &*cached {
                Some((s, e)) if *s == second => e.clone(),
                _ => {
                    let e = RestrictedExpression::new_datetime(
                        Timestamp::from_unix_millis(second * 1000).rfc3339(),
                    );
                    *cached = Some((second, e.clone()));
                    e
                }
            }
        };
        let days = ms.div_euclid(86_400_000);
        let hour = ms.rem_euclid(86_400_000) / 3_600_000;
        // 1970-01-01 was a Thursday (ISO weekday 4).
        let weekday = (days + 3).rem_euclid(7) + 1;
        vec![
            ("client_ip".into(), ip),
            ("now".into(), now_expr),
            ("hour".into(), RestrictedExpression::new_long(hour)),
            ("weekday".into(), RestrictedExpression::new_long(weekday)),
        ]
    }

    fn ask(
        &self,
        set: &cedar_policy::PolicySet,
        principal: &EntityUid,
        action: &str,
        resource: &EntityUid,
        context: Context,
        entities: &Entities,
    ) -> Result<Response, String> {
        let action = self
            .names
            .actions
            .get(action)
            .cloned()
            .ok_or_else(|| format!("unknown action {action}"))?;
        // Requests are built by this module to fit the shipped schema, against
        // which every policy was validated at load; an evaluation error denies.
        let req = Request::new(principal.clone(), action, resource.clone(), context, None)
            .map_err(|e| format!("invalid request: {e}"))?;
        Ok(Authorizer::new().is_authorized(&req, set, entities))
    }

    /// Combines Cedar's answer for one request into a decision.
    fn judge(
        &self,
        what: &str,
        resp: Response,
        retry: impl FnOnce() -> Result<Response, String>,
    ) -> Decision {
        let errors: Vec<String> = resp.diagnostics().errors().map(|e| e.to_string()).collect();
        if !errors.is_empty() {
            // A policy that fails to evaluate could be a forbid that did not fire: fail closed.
            return Decision::Deny {
                reason: format!("policy evaluation failed for {what}: {}", errors.join("; ")),
                policies: Vec::new(),
            };
        }
        let reasons: Vec<String> = resp.diagnostics().reason().map(|p| p.to_string()).collect();
        match resp.decision() {
            cedar_policy::Decision::Allow => Decision::allow(reasons),
            cedar_policy::Decision::Deny if reasons.is_empty() => Decision::Deny {
                reason: format!("no policy permits {what}"),
                policies: Vec::new(),
            },
            cedar_policy::Decision::Deny => {
                let approval_only = reasons.iter().all(|r| self.approval_routes.contains_key(r));
                if approval_only {
                    match retry() {
                        Ok(r) if r.decision() == cedar_policy::Decision::Allow => {
                            let routes: BTreeSet<String> = reasons
                                .iter()
                                .filter_map(|r| self.approval_routes.get(r).cloned())
                                .collect();
                            Decision::Review {
                                routes: routes.into_iter().collect(),
                                reason: format!("{what} requires approval"),
                                policies: reasons,
                            }
                        }
                        Ok(_) => Decision::Deny {
                            reason: format!("no policy permits {what}"),
                            policies: Vec::new(),
                        },
                        Err(e) => Decision::Deny {
                            reason: e,
                            policies: Vec::new(),
                        },
                    }
                } else {
                    let forbids: Vec<String> = reasons
                        .into_iter()
                        .filter(|r| !self.approval_routes.contains_key(r))
                        .collect();
                    Decision::Deny {
                        reason: format!("{what} is forbidden by policy {}", forbids.join(", ")),
                        policies: forbids,
                    }
                }
            }
        }
    }

    /// Whether policy `id` names `action` in its scope (`action ==` it, or
    /// `action in [...]` listing it): a permit of every action does not.
    pub(crate) fn names_action(&self, id: &str, action: &str) -> bool {
        let Some(p) = self.all.policy(&cedar_policy::PolicyId::new(id)) else {
            return false;
        };
        let Some(uid) = self.names.actions.get(action) else {
            return false;
        };
        match p.action_constraint() {
            cedar_policy::ActionConstraint::Eq(a) => a == *uid,
            cedar_policy::ActionConstraint::In(list) => list.contains(uid),
            cedar_policy::ActionConstraint::Any => false,
        }
    }

    /// Decides one Cedar request: asked of the whole set, and, if only
    /// `@approval` forbids deny it, asked again without them to tell Review
    /// from Deny. An `approved` request is what those forbids ask for, so
    /// it is asked of the set without them (plain forbids still apply).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn decide_one(
        &self,
        what: &str,
        principal: &EntityUid,
        action: &str,
        resource: &EntityUid,
        pairs: &[(String, RestrictedExpression)],
        entities: &Entities,
        approved: bool,
    ) -> Decision {
        let run = |set| {
            Context::from_pairs(pairs.to_vec())
                .map_err(|e| e.to_string())
                .and_then(|c| self.ask(set, principal, action, resource, c, entities))
        };
        if approved {
            return match run(&self.without_approvals) {
                Ok(resp) => self.judge(what, resp, || Err("unreachable".into())),
                Err(e) => deny_error(e),
            };
        }
        match run(&self.all) {
            Ok(resp) => self.judge(what, resp, || run(&self.without_approvals)),
            Err(e) => deny_error(e),
        }
    }

    /// May `identity` open `connection`?
    pub fn decide_connect(&self, r: &ConnectRequest<'_>) -> Decision {
        let what = format!("{} connecting to {}", r.identity.subject, r.connection);
        let built = match self.base_entities(r.identity, r.connection, r.kind) {
            Ok(b) => b,
            Err(e) => return deny_error(e),
        };
        let entities = match Entities::from_entities(built.entities, None) {
            Ok(e) => e,
            Err(e) => return deny_error(e.to_string()),
        };
        let pairs = self.time_pairs(r.now, r.client_ip);
        self.decide_one(
            &what,
            &built.principal,
            "connect",
            &built.connection,
            &pairs,
            &entities,
            false,
        )
    }

    /// May the statements run? All their actions must be allowed; a denial of
    /// any wins over a review, a review over an allow.
    pub fn decide_statements(&self, r: &StatementRequest<'_>) -> Decision {
        let built = match self.base_entities(r.identity, r.connection, "postgres") {
            Ok(b) => b,
            Err(e) => return deny_error(e),
        };
        let mut entities = built.entities;
        let mut requests: Vec<(
            String,
            &StatementAnalysis,
            &gatehouse_sql::Action,
            EntityUid,
        )> = Vec::new();
        let mut seen_tables = HashSet::new();
        for st in r.statements {
            for a in &st.actions {
                let Some(t) = &a.table else {
                    let what = match (a.kind, st.opaque_functions.as_slice()) {
                        // Name the functions: what an author must allow or avoid.
                        (ActionKind::Function, names) if !names.is_empty() => format!(
                            "function {} on connection {}",
                            names.join(", "),
                            r.connection
                        ),
                        _ => format!(
                            "{} on connection {}{}",
                            a.kind,
                            r.connection,
                            flag_notes(st, a)
                        ),
                    };
                    requests.push((what, st, a, built.connection.clone()));
                    continue;
                };
                for (schema, q) in candidates(t, r.search_path) {
                    let id = format!("{}/{q}", r.connection);
                    let table = uid(&self.names.table, &id);
                    if seen_tables.insert(id.clone()) {
                        match Entity::new(
                            table.clone(),
                            [
                                ("connection".to_string(), s(r.connection)),
                                ("schema".to_string(), s(schema)),
                                ("name".to_string(), s(&t.name)),
                                ("qualified".to_string(), s(&q)),
                            ]
                            .into(),
                            HashSet::from([built.connection.clone()]),
                        ) {
                            Ok(e) => entities.push(e),
                            Err(e) => return deny_error(e.to_string()),
                        }
                    }
                    requests.push((
                        format!("{} on {q}{}", a.kind, flag_notes(st, a)),
                        st,
                        a,
                        table,
                    ));
                }
            }
        }
        let entities = match Entities::from_entities(entities, None) {
            Ok(e) => e,
            Err(e) => return deny_error(e.to_string()),
        };
        let multi = r.statements.len() > 1;
        let mut allowed = BTreeSet::new();
        // The tightest cap of any write (`None` inside: a write not capped).
        let mut row_cap: Option<RowCap> = None;
        let mut review: Option<Decision> = None;
        for (what, st, a, resource) in requests {
            let pairs = statement_pairs(self.time_pairs(r.now, r.client_ip), r, st, a, multi);
            let what = format!("{} ({what})", r.identity.subject);
            let d = self.decide_one(
                &what,
                &built.principal,
                a.kind.as_str(),
                &resource,
                &pairs,
                &entities,
                r.approved,
            );
            match d {
                Decision::Allow { policies, .. } => {
                    if a.kind.changes_rows() {
                        if let Some(cap) = self.write_cap(&policies) {
                            if row_cap.as_ref().is_none_or(|c| cap.rows < c.rows) {
                                row_cap = Some(cap);
                            }
                        }
                    }
                    allowed.extend(policies)
                }
                deny @ Decision::Deny { .. } => return deny,
                Decision::Review {
                    routes,
                    reason,
                    policies,
                } => match &mut review {
                    None => {
                        review = Some(Decision::Review {
                            routes,
                            reason,
                            policies,
                        })
                    }
                    Some(Decision::Review {
                        routes: rs,
                        policies: ps,
                        ..
                    }) => {
                        for x in routes {
                            if !rs.contains(&x) {
                                rs.push(x);
                            }
                        }
                        for x in policies {
                            if !ps.contains(&x) {
                                ps.push(x);
                            }
                        }
                    }
                    Some(_) => {}
                },
            }
        }
        review.unwrap_or(Decision::Allow {
            policies: allowed.into_iter().collect(),
            row_cap,
        })
    }

    /// The cap on a write these permits allowed: only when every one of
    /// them carries `@max_rows` (permits add up: an uncapped one allows it
    /// uncapped), and then the most generous.
    fn write_cap(&self, permits: &[String]) -> Option<RowCap> {
        let mut cap: Option<RowCap> = None;
        for p in permits {
            let rows = *self.row_caps.get(p)?;
            if cap.as_ref().is_none_or(|c| rows > c.rows) {
                cap = Some(RowCap {
                    rows,
                    policy: p.clone(),
                    approval: self.row_cap_routes.get(p).cloned(),
                });
            }
        }
        cap
    }
}

/// The flags of `st` a policy most often turns on, named with the context
/// attribute that allows them, so a refusal says what the policy lacks
/// (`, locking rows (context.locks_rows)`); empty when none is set.
fn flag_notes(st: &StatementAnalysis, a: &gatehouse_sql::Action) -> String {
    let f = &st.flags;
    let notes: [(bool, &str); 8] = [
        (
            a.has_where == Some(false),
            "without a WHERE that bounds its rows (context.has_where)",
        ),
        (f.locks_rows, "locking rows (context.locks_rows)"),
        (
            f.data_modifying_cte,
            "changing data inside another statement (context.data_modifying_cte)",
        ),
        (
            f.explain_analyze,
            "running it under EXPLAIN ANALYZE (context.explain_analyze)",
        ),
        (f.copy_program, "with COPY … PROGRAM (context.copy_program)"),
        (
            f.copy_file,
            "with a server-side COPY file (context.copy_file)",
        ),
        (
            f.changes_search_path,
            "changing search_path (context.changes_search_path)",
        ),
        (f.opaque_code, "with procedural code (context.opaque_code)"),
    ];
    let mut out = String::new();
    for (_, note) in notes.iter().filter(|(on, _)| *on) {
        out.push_str(", ");
        out.push_str(note);
    }
    out
}

pub(crate) fn deny_error(e: String) -> Decision {
    Decision::Deny {
        reason: format!("the request could not be evaluated: {e}"),
        policies: Vec::new(),
    }
}

fn statement_pairs(
    mut pairs: Vec<(String, RestrictedExpression)>,
    r: &StatementRequest<'_>,
    st: &StatementAnalysis,
    a: &gatehouse_sql::Action,
    multi: bool,
) -> Vec<(String, RestrictedExpression)> {
    let tables = |write: bool| -> Vec<String> {
        st.actions
            .iter()
            .filter(|x| x.kind.writes() == write && x.kind != ActionKind::Explain)
            .filter_map(|x| x.table.as_ref())
            .flat_map(|t| candidates(t, r.search_path).into_iter().map(|(_, q)| q))
            .collect()
    };
    let read = tables(false);
    let written = tables(true);
    let f = &st.flags;
    let flag = |k: &str, v: bool| (k.to_string(), RestrictedExpression::new_bool(v));
    pairs.extend([
        flag("approved", r.approved),
        ("protocol".to_string(), s(r.protocol)),
        ("statement_kind".to_string(), s(st.kind.as_str())),
        ("operation".to_string(), s(&st.operation)),
        flag("has_where", a.has_where.unwrap_or(true)),
        (
            "tables_read".to_string(),
            set(read.iter().map(String::as_str)),
        ),
        (
            "tables_written".to_string(),
            set(written.iter().map(String::as_str)),
        ),
        (
            "functions".to_string(),
            set(st.functions.iter().map(String::as_str)),
        ),
        (
            "opaque_functions".to_string(),
            set(st.opaque_functions.iter().map(String::as_str)),
        ),
        flag("multi_statement", multi),
        flag("data_modifying_cte", f.data_modifying_cte),
        flag("copy_program", f.copy_program),
        flag("copy_file", f.copy_file),
        flag("explain_analyze", f.explain_analyze),
        flag("changes_search_path", f.changes_search_path),
        flag("changes_role", f.changes_role),
        flag("locks_rows", f.locks_rows),
        flag("opaque_code", f.opaque_code),
    ]);
    pairs
}
