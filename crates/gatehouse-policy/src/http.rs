//! Deciding one HTTP request: `http:<METHOD>` on the connection, with the
//! request's facts (normalised path, query, headers, JSON body fields) as
//! context.

use crate::decide::{deny_error, s, set};
use crate::{Decision, PolicyEngine, HTTP_ACTIONS};
use cedar_policy::{Entities, RestrictedExpression};
use gatehouse_core::{Identity, Timestamp};
use std::net::IpAddr;

/// One HTTP request as the policy sees it. Built by the HTTP adapter from
/// what it will forward, never from what the caller claims.
pub struct HttpRequestFacts<'a> {
    /// The caller.
    pub identity: &'a Identity,
    /// The connection name.
    pub connection: &'a str,
    /// Its kind (`http`).
    pub kind: &'a str,
    /// The caller's address.
    pub client_ip: IpAddr,
    /// Now.
    pub now: Timestamp,
    /// Whether a human approved exactly this request.
    pub approved: bool,
    /// The method, upper case (`GET`).
    pub method: &'a str,
    /// The normalised, decoded path after the connection prefix.
    pub path: &'a str,
    /// `name=value` query pairs, decoded.
    pub query: &'a [String],
    /// `name: value` headers (lower-case names), credentials left out.
    pub headers: &'a [String],
    /// The body's media type without parameters, `""` when none.
    pub content_type: &'a str,
    /// A JSON object body's top-level member names.
    pub body_fields: &'a [String],
    /// Its top-level scalars as `name=value`.
    pub body: &'a [String],
}

impl PolicyEngine {
    /// May the HTTP request be forwarded? A method outside the schema's
    /// actions is refused (fail closed).
    pub fn decide_http(&self, r: &HttpRequestFacts<'_>) -> Decision {
        let action = format!("http:{}", r.method);
        let what = format!(
            "{} ({} {} on {})",
            r.identity.subject, r.method, r.path, r.connection
        );
        if !HTTP_ACTIONS.contains(&action.as_str()) {
            return Decision::Deny {
                reason: format!("{what}: the gateway does not forward {} requests", r.method),
                policies: Vec::new(),
            };
        }
        let built = match self.base_entities(r.identity, r.connection, r.kind) {
            Ok(b) => b,
            Err(e) => return deny_error(e),
        };
        let mut entities = built.entities;
        entities.extend(self.action_entities.iter().cloned());
        let entities = match Entities::from_entities(entities, None) {
            Ok(e) => e,
            Err(e) => return deny_error(e.to_string()),
        };
        let mut pairs = self.time_pairs(r.now, r.client_ip);
        let strings = |v: &[String]| set(v.iter().map(String::as_str));
        pairs.extend([
            (
                "approved".to_string(),
                RestrictedExpression::new_bool(r.approved),
            ),
            ("method".to_string(), s(r.method)),
            ("path".to_string(), s(r.path)),
            ("query".to_string(), strings(r.query)),
            ("headers".to_string(), strings(r.headers)),
            ("content_type".to_string(), s(r.content_type)),
            ("body_fields".to_string(), strings(r.body_fields)),
            ("body".to_string(), strings(r.body)),
        ]);
        self.decide_one(
            &what,
            &built.principal,
            &action,
            &built.connection,
            &pairs,
            &entities,
            r.approved,
        )
    }
}
