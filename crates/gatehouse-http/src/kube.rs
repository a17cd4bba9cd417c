//! Kubernetes API requests, classified as the API server classifies them
//! (its request-info rules), so the policy decides the verb, resource,
//! namespace and name the API server will act on.
//!
//! - `/api/v1/...` is the core group; `/apis/<group>/<version>/...` the
//!   others. `/api`, `/apis`, a group or version alone, `/version` and
//!   `/openapi/...` are discovery.
//! - `namespaces/<ns>/<resource>/<name>/<subresource>`; a namespace object
//!   (`namespaces/<ns>`, and its `status` and `finalize`) is in its own
//!   namespace, as the API server files it.
//! - GET is `get` with a name, `list` without; `watch=true` (or the legacy
//!   `/watch/` prefix) makes either a `watch`. POST `create`, PUT `update`,
//!   PATCH `patch`, DELETE `delete` with a name and `deletecollection`
//!   without. A list whose `fieldSelector` is `metadata.name=<n>` names `n`.
//! - The `exec`, `attach`, `portforward` and `proxy` subresources are
//!   verbs of their own (what they let a caller do has nothing to do with
//!   reading or writing an object); the caller's own access reviews
//!   (`kubectl auth can-i`) are `self_review`.

use crate::refusals::{self, Problem};
use http::Method;

pub(crate) mod masking;
mod status;
pub(crate) mod stream;

pub(crate) use status::status_response;

/// A request as the policy decides it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KubeRequest {
    pub(crate) verb: &'static str,
    pub(crate) api_group: String,
    pub(crate) api_version: String,
    pub(crate) resource: String,
    pub(crate) subresource: String,
    pub(crate) namespace: String,
    pub(crate) name: String,
    pub(crate) dry_run: bool,
    /// exec: the command's arguments, in order.
    pub(crate) command: Vec<String>,
    pub(crate) container: String,
    pub(crate) tty: bool,
    pub(crate) stdin: bool,
    /// port-forward: the ports the request names (`ports=80,443`).
    pub(crate) ports: Vec<u16>,
}

/// Subresources of a namespace object (the namespace stays the object).
const NAMESPACE_SUBRESOURCES: &[&str] = &["status", "finalize"];

/// The caller's own access reviews: `(group, resource)`.
const SELF_REVIEWS: &[(&str, &str)] = &[
    ("authorization.k8s.io", "selfsubjectaccessreviews"),
    ("authorization.k8s.io", "selfsubjectrulesreviews"),
    ("authentication.k8s.io", "selfsubjectreviews"),
];

/// A boolean option as the API server converts it: any value but `0` and
/// `false` (in any case), the empty one included, is true.
fn truthy(v: &str) -> bool {
    !(v == "0" || v.eq_ignore_ascii_case("false"))
}

/// The name a field selector requires exactly (`metadata.name=x` or `==x`
/// among its terms), as the API server reads it.
fn exact_name(selector: &str) -> Option<String> {
    selector.split(',').find_map(|term| {
        let v = term.trim().strip_prefix("metadata.name")?;
        let v = v.strip_prefix("==").or_else(|| v.strip_prefix('='))?;
        (!v.is_empty() && !v.contains(['/', '%'])).then(|| v.to_string())
    })
}

/// Whether a raw query reads the same to Go's parser as to the gateway's:
/// Go drops a pair with `;` or a malformed `%` escape, so
/// `command=rm&command=%zz` would be one argument shorter to the API server
/// than to the policy.
pub(crate) fn query_read_alike(raw: &str) -> Result<(), String> {
    if raw.contains(';') {
        return Err(
            "the query has a ';', which the API server reads differently: send it encoded (%3B)"
                .into(),
        );
    }
    let b = raw.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = |j: usize| b.get(j).is_some_and(u8::is_ascii_hexdigit);
            if !(hex(i + 1) && hex(i + 2)) {
                return Err(
                    "the query has a malformed % escape, which the API server drops".into(),
                );
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    Ok(())
}

impl KubeRequest {
    /// Classifies a request for `segments` (the normalised path after the
    /// connection) with its decoded query pairs and body. `Err` names what
    /// the API server would not take either.
    pub(crate) fn classify(
        method: &Method,
        segments: &[String],
        query: &[(String, String)],
        body: &[u8],
    ) -> Result<Self, String> {
        let param = |name: &str| {
            query
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
        let discovery = || KubeRequest {
            verb: "discovery",
            ..KubeRequest::default()
        };
        let reads = matches!(*method, Method::GET | Method::HEAD);
        let (group, version, rest) = match seg.as_slice() {
            ["api"] | ["apis"] | ["apis", _] | ["api", _] | ["apis", _, _] if reads => {
                return Ok(discovery())
            }
            ["version"] | ["openapi", ..] if reads => return Ok(discovery()),
            ["api", version, rest @ ..] if !rest.is_empty() => ("", *version, rest),
            ["apis", group, version, rest @ ..] if !rest.is_empty() => (*group, *version, rest),
            _ => {
                return Ok(KubeRequest {
                    verb: "other",
                    ..KubeRequest::default()
                })
            }
        };
        let mut r = KubeRequest {
            api_group: group.to_string(),
            api_version: version.to_string(),
            dry_run: dry_run(method, param("dryRun"), body),
            ..KubeRequest::default()
        };
        // As the API server reads ListOptions: the first `watch` value, any
        // but `0` and `false`, and only on a list.
        let asks_watch = param("watch").is_some_and(truthy);
        let mut watch = false;
        let mut parts = rest;
        if parts.first() == Some(&"watch") {
            watch = true;
            parts = &parts[1..];
        }
        if parts.first() == Some(&"namespaces") {
            if let Some(ns) = parts.get(1) {
                r.namespace = ns.to_string();
                if parts.len() > 2 && !NAMESPACE_SUBRESOURCES.contains(&parts[2]) {
                    parts = &parts[2..];
                }
            }
        }
        let Some(resource) = parts.first() else {
            return Err("the path names no resource".into());
        };
        r.resource = resource.to_string();
        r.name = parts.get(1).map_or_else(String::new, |n| n.to_string());
        r.subresource = parts.get(2).map_or_else(String::new, |s| s.to_string());
        let named = parts.len() > 1;
        if !named && reads {
            watch |= asks_watch;
            // A list that selects one name (`kubectl get -w NAME`) is about
            // that name, as the API server files it.
            if let Some(name) = param("fieldSelector").and_then(exact_name) {
                r.name = name;
            }
        }
        r.verb = match (method, r.subresource.as_str()) {
            (_, "exec") => "exec",
            (_, "attach") => "attach",
            (_, "portforward") => "portforward",
            (_, "proxy") => "proxy",
            (&Method::GET | &Method::HEAD, _) if watch => "watch",
            (&Method::GET | &Method::HEAD, _) if named => "get",
            (&Method::GET | &Method::HEAD, _) => "list",
            (&Method::POST, _) if !named && SELF_REVIEWS.contains(&(group, resource)) => {
                "self_review"
            }
            (&Method::POST, _) => "create",
            (&Method::PUT, _) => "update",
            (&Method::PATCH, _) => "patch",
            (&Method::DELETE, _) if named => "delete",
            (&Method::DELETE, _) => "deletecollection",
            (m, _) => {
                return Err(format!(
                    "the Kubernetes API takes no {m} requests on resources"
                ))
            }
        };
        if matches!(r.verb, "exec" | "attach") {
            r.command = query
                .iter()
                .filter(|(k, _)| k == "command")
                .map(|(_, v)| v.clone())
                .collect();
            r.tty = param("tty").is_some_and(truthy);
            r.stdin = param("stdin").is_some_and(truthy);
        }
        if r.verb == "portforward" {
            for (_, v) in query.iter().filter(|(k, _)| k == "ports") {
                for p in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    r.ports.push(
                        p.parse()
                            .map_err(|_| format!("{p:?} is not a port (1-65535)"))?,
                    );
                }
            }
        }
        if let Some(c) = param("container") {
            r.container = c.to_string();
        }
        Ok(r)
    }

    /// Classifies a request to a kubernetes connection with its raw query,
    /// refusing what the API server would read otherwise and upgrades
    /// that are not streams (or streams that are not upgrades).
    pub(crate) fn of_request(
        method: &Method,
        raw_query: Option<&str>,
        segments: &[String],
        body: &[u8],
        upgrading: bool,
    ) -> Result<Self, Problem> {
        if let Some(raw) = raw_query {
            query_read_alike(raw).map_err(|e| refusals::bad_message(&e))?;
        }
        let query: Vec<(String, String)> = raw_query
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        let k = Self::classify(method, segments, &query, body)
            .map_err(|e| refusals::bad_message(&e))?;
        let streams = matches!(k.verb, "exec" | "attach" | "portforward");
        if upgrading != streams {
            return Err(refusals::upgrade_not_relayed(if streams {
                "exec, attach and port-forward are relayed only as an upgrade to WebSocket or SPDY/3.1"
            } else {
                "only exec, attach and port-forward are relayed as upgrades"
            }));
        }
        Ok(k)
    }

    /// What the policy is asked about this request by `identity` from
    /// `client_ip` (the query and body facts left empty for the caller to
    /// add; its ports its own).
    pub(crate) fn facts<'a>(
        &'a self,
        identity: &'a gatehouse_core::Identity,
        connection: &'a str,
        client_ip: std::net::IpAddr,
        approved: bool,
        path: &'a str,
    ) -> gatehouse_policy::KubeRequestFacts<'a> {
        gatehouse_policy::KubeRequestFacts {
            identity,
            connection,
            client_ip,
            now: gatehouse_core::Timestamp::now(),
            approved,
            verb: self.verb,
            api_group: &self.api_group,
            api_version: &self.api_version,
            resource: &self.resource,
            subresource: &self.subresource,
            namespace: &self.namespace,
            name: &self.name,
            path,
            query: &[],
            dry_run: self.dry_run,
            command: &self.command,
            container: &self.container,
            tty: self.tty,
            stdin: self.stdin,
            ports: &self.ports,
            body_fields: &[],
            body: &[],
        }
    }

    /// Whether the response may carry Secret values.
    pub(crate) fn names_secrets(&self) -> bool {
        self.api_group.is_empty() && self.resource == "secrets"
    }
}

/// Whether the API server will only pretend. A DELETE with a body reads
/// its options (`dryRun` among them) from the body and ignores the query;
/// a body the gateway cannot read (protobuf) counts as no dry run, the
/// safe side for a policy that spares dry runs.
fn dry_run(method: &Method, query: Option<&str>, body: &[u8]) -> bool {
    if method == Method::DELETE && !body.is_empty() {
        return serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v["dryRun"].as_array().map(|a| a.iter().any(|x| x == "All")))
            .unwrap_or(false);
    }
    query == Some("All")
}

#[cfg(test)]
mod tests;
