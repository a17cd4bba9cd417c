//! `identities.csv`: every identity that could act during the period, and
//! what the policy lets each reach.
//!
//! Two kinds: identities holding a usable service token at some time in the
//! period (from the log's token events), and OIDC workload identities that
//! logged in during the period (from the login events, with the groups and
//! claims they presented, since those decide what the policy grants).

use super::tables::Table;
use super::{rfc3339, AccessPolicy, Period};
use gatehouse_core::{Identity, IdentitySource, Timestamp};
use gatehouse_evidence::{Entry, EventKind};
use serde_json::Value;
use std::collections::BTreeMap;

/// Who could act: read off the log from its start to the period's end.
pub(super) struct Identities {
    /// The period's start.
    from: String,
    /// token id -> (identity, groups, expires, revoked at)
    tokens: BTreeMap<String, (String, Vec<String>, String, Option<String>)>,
    /// The same workload logs in again and again: one row set per distinct
    /// (subject, groups, claims, delegation), whatever its tokens' ids.
    workloads: BTreeMap<String, Identity>,
}

impl Identities {
    /// For `period`; [`Identities::observe`] every entry up to its end.
    pub(super) fn new(period: &Period) -> Self {
        Self {
            from: rfc3339(period.from),
            tokens: BTreeMap::new(),
            workloads: BTreeMap::new(),
        }
    }

    /// Notes what `e` (the next entry) says of tokens and logins.
    pub(super) fn observe(&mut self, e: &Entry) {
        let (from, tokens, workloads) = (&self.from, &mut self.tokens, &mut self.workloads);
        let p = &e.event.payload;
        let s = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        match e.event.kind {
            EventKind::TokenCreated => {
                let mut groups: Vec<String> = p
                    .get("groups")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|g| g.as_str().map(str::to_string))
                    .collect();
                groups.sort();
                groups.dedup();
                tokens.insert(
                    s("token_id"),
                    (s("identity"), groups, s("expires_at"), None),
                );
            }
            EventKind::TokenRevoked => {
                if let Some(t) = tokens.get_mut(&s("token_id")) {
                    t.3 = Some(e.event.time.clone());
                }
            }
            EventKind::AuthSuccess if e.event.time >= *from => {
                let Some(mut id) = p
                    .get("identity")
                    .and_then(|i| serde_json::from_value::<Identity>(i.clone()).ok())
                else {
                    return;
                };
                if let IdentitySource::Oidc(o) = &mut id.source {
                    o.token_id = None;
                    o.expires_at = 0;
                    id.groups.sort();
                    let key = serde_json::to_string(&id).unwrap_or_default();
                    workloads.entry(key).or_insert(id);
                }
            }
            _ => {}
        }
    }

    /// The table, reach computed with `policy` when there is one.
    pub(super) fn table(self, period: &Period, policy: Option<&AccessPolicy>) -> Table {
        let Self {
            from,
            tokens,
            workloads,
        } = self;
        let mut principals: Vec<(Identity, String)> = Vec::new();
        let mut by_name: BTreeMap<(String, Vec<String>), Vec<String>> = BTreeMap::new();
        for (id, (identity, groups, expires, revoked)) in tokens {
            let usable = *expires > *from && revoked.as_deref().is_none_or(|r| r >= from.as_str());
            if usable {
                by_name.entry((identity, groups)).or_default().push(id);
            }
        }
        for ((subject, groups), ids) in by_name {
            let id = Identity::with_service_token(subject, groups, "evidence-pack");
            principals.push((id, ids.join(" ")));
        }
        for id in workloads.into_values() {
            let IdentitySource::Oidc(o) = &id.source else {
                continue;
            };
            let mut credential = format!("oidc:{}", o.issuer);
            for (k, v) in &o.claims {
                credential.push_str(&format!(" {k}={v}"));
            }
            if let Some(d) = &o.delegation {
                if !d.actors.is_empty() {
                    credential.push_str(&format!(" actors={}", d.actor_chain()));
                }
            }
            principals.push((id, credential));
        }

        let mut table = Table::new(
            "identities",
            &[
                "identity",
                "groups",
                "tokens",
                "connection",
                "table",
                "action",
                "decision",
                "policies",
            ],
        );
        let now = Timestamp::from_system_time(period.to);
        for (principal, credentials) in principals {
            let who = [
                principal.subject.clone(),
                principal.groups.join(" "),
                credentials,
            ];
            let Some(p) = policy else {
                table.rows.push(
                    who.iter()
                        .cloned()
                        .chain(std::iter::repeat_n(String::new(), 5))
                        .collect(),
                );
                continue;
            };
            let localhost = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
            for r in p.engine.reach(&principal, &p.connections, localhost, now) {
                table.rows.push(
                    who.iter()
                        .cloned()
                        .chain([
                            r.connection,
                            r.table,
                            r.action,
                            r.decision,
                            r.policies.join(" "),
                        ])
                        .collect(),
                );
            }
        }
        table
    }
}
