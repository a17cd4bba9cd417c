//! Deciding one HTTP request: `http:<METHOD>` on the connection, with the
//! request's facts (normalised path, query, headers, JSON body fields) as
//! context.

use crate::decide::{deny_error, s, set};
use crate::{Decision, PolicyEngine, HTTP_ACTIONS, MCP_ACTIONS};
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

/// One MCP message as the policy sees it, read from the body the gateway
/// forwards (never from headers a caller could set apart from it).
pub struct McpRequestFacts<'a> {
    /// The caller.
    pub identity: &'a Identity,
    /// The connection name.
    pub connection: &'a str,
    /// The caller's address.
    pub client_ip: IpAddr,
    /// Now.
    pub now: Timestamp,
    /// Whether a human approved exactly this call.
    pub approved: bool,
    /// The action: one of [`MCP_ACTIONS`] (`mcp:tools/call`).
    pub action: &'a str,
    /// The JSON-RPC method.
    pub method: &'a str,
    /// The tool (tools/call), the URI (resources/read), the prompt (prompts/get).
    pub tool: &'a str,
    /// The resource URI.
    pub uri: &'a str,
    /// The prompt.
    pub prompt: &'a str,
    /// Top-level argument names.
    pub argument_names: &'a [String],
    /// Top-level scalar arguments as `name=value`.
    pub arguments: &'a [String],
}

/// Who asks for which action on a connection, when and from where.
pub(crate) struct Asked<'a> {
    pub(crate) identity: &'a Identity,
    pub(crate) connection: &'a str,
    pub(crate) kind: &'a str,
    pub(crate) client_ip: IpAddr,
    pub(crate) now: Timestamp,
    pub(crate) approved: bool,
    pub(crate) action: &'a str,
}

impl PolicyEngine {
    /// Decides one action on a connection (its kind's actions and groups),
    /// with the time, the caller's address, `approved` and `context` as the
    /// request's context.
    fn decide_on_connection<const N: usize>(
        &self,
        what: &str,
        a: &Asked<'_>,
        context: [(&str, RestrictedExpression); N],
    ) -> Decision {
        self.decide_on(what, a, |_| Ok(None), context)
    }

    /// Decides one action whose resource is the connection, or an entity
    /// inside it that `resource` builds from the connection's uid.
    pub(crate) fn decide_on<const N: usize>(
        &self,
        what: &str,
        a: &Asked<'_>,
        resource: impl FnOnce(&cedar_policy::EntityUid) -> Result<Option<cedar_policy::Entity>, String>,
        context: [(&str, RestrictedExpression); N],
    ) -> Decision {
        let built = match self.base_entities(a.identity, a.connection, a.kind) {
            Ok(b) => b,
            Err(e) => return deny_error(e),
        };
        let mut entities = built.entities;
        let resource = match resource(&built.connection) {
            Ok(Some(entity)) => {
                let uid = entity.uid();
                entities.push(entity);
                uid
            }
            Ok(None) => built.connection,
            Err(e) => return deny_error(e),
        };
        entities.extend(self.action_entities.get(a.action).cloned());
        let entities = match Entities::from_entities(entities, None) {
            Ok(e) => e,
            Err(e) => return deny_error(e.to_string()),
        };
        let mut pairs = self.time_pairs(a.now, a.client_ip);
        pairs.push((
            "approved".to_string(),
            RestrictedExpression::new_bool(a.approved),
        ));
        pairs.extend(context.into_iter().map(|(k, v)| (k.to_string(), v)));
        self.decide_one(
            what,
            &built.principal,
            a.action,
            &resource,
            &pairs,
            &entities,
            a.approved,
        )
    }

    /// May the MCP message be forwarded?
    pub fn decide_mcp(&self, r: &McpRequestFacts<'_>) -> Decision {
        let subject = match (r.tool, r.uri, r.prompt) {
            (t, _, _) if !t.is_empty() => format!("tool {t}"),
            (_, u, _) if !u.is_empty() => format!("resource {u}"),
            (_, _, p) if !p.is_empty() => format!("prompt {p}"),
            _ if r.method.is_empty() => "the session".to_string(),
            _ => r.method.to_string(),
        };
        let what = format!(
            "{} ({} {subject} on {})",
            r.identity.subject, r.action, r.connection
        );
        if !MCP_ACTIONS.contains(&r.action) {
            return deny_error(format!("unknown MCP action {}", r.action));
        }
        let strings = |v: &[String]| set(v.iter().map(String::as_str));
        self.decide_on_connection(
            &what,
            &Asked {
                identity: r.identity,
                connection: r.connection,
                kind: "mcp",
                client_ip: r.client_ip,
                now: r.now,
                approved: r.approved,
                action: r.action,
            },
            [
                ("method", s(r.method)),
                ("tool", s(r.tool)),
                ("uri", s(r.uri)),
                ("prompt", s(r.prompt)),
                ("argument_names", strings(r.argument_names)),
                ("arguments", strings(r.arguments)),
            ],
        )
    }

    /// May the HTTP request be forwarded? A method outside the schema's
    /// actions is refused (fail closed).
    pub fn decide_http(&self, r: &HttpRequestFacts<'_>) -> Decision {
        // Frameworks answer HEAD with their GET handler: it is decided as a GET.
        let action = match r.method {
            "HEAD" => "http:GET".to_string(),
            m => format!("http:{m}"),
        };
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
        let strings = |v: &[String]| set(v.iter().map(String::as_str));
        self.decide_on_connection(
            &what,
            &Asked {
                identity: r.identity,
                connection: r.connection,
                kind: r.kind,
                client_ip: r.client_ip,
                now: r.now,
                approved: r.approved,
                action: &action,
            },
            [
                ("method", s(r.method)),
                ("path", s(r.path)),
                ("query", strings(r.query)),
                ("headers", strings(r.headers)),
                ("content_type", s(r.content_type)),
                ("body_fields", strings(r.body_fields)),
                ("body", strings(r.body)),
            ],
        )
    }
}
