//! The access review's question for HTTP and MCP connections: which
//! methods on which paths, which tools and resources. The paths, tools and
//! URIs asked about are the ones policies name in their conditions
//! (`context.path like "/v1/*"`, `context.tool == "query_db"`), plus one
//! that none names, so a review shows both what is granted by name and
//! what anything else gets.

use crate::{Decision, HttpRequestFacts, McpRequestFacts, PolicyEngine};
use gatehouse_core::{Identity, Timestamp};
use std::collections::BTreeSet;
use std::net::IpAddr;

/// What stands for every path, tool or resource no policy names.
pub const UNNAMED: &str = "(none a policy names)";
const PROBE_NAME: &str = "gatehouse-access-review-probe";
const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE"];

pub(crate) struct Probe<'a> {
    pub(crate) identity: &'a Identity,
    pub(crate) connection: &'a str,
    pub(crate) kind: &'a str,
    pub(crate) client_ip: IpAddr,
    pub(crate) now: Timestamp,
}

impl PolicyEngine {
    /// The string literals policies compare `context.<attribute>` with
    /// (`==`, `like` with its `*` taken as nothing, or a list's
    /// `.contains(context.<attribute>)`).
    pub(crate) fn named_in_conditions(&self, attribute: &str) -> BTreeSet<String> {
        self.named_in(&format!("context.{attribute}"))
    }

    /// The string literals policies compare `expr` with (`context.path`,
    /// `resource.namespace`).
    fn named_in(&self, expr: &str) -> BTreeSet<String> {
        let mut found = BTreeSet::new();
        for p in self.all.policies() {
            let text = p.to_string();
            let member = format!("].contains({expr})");
            let mut rest = text.as_str();
            while let Some(at) = rest.find(&member) {
                if let Some(open) = rest[..at].rfind('[') {
                    found.extend(
                        rest[open + 1..at]
                            .split(',')
                            .filter_map(|x| x.trim().strip_prefix('"')?.strip_suffix('"'))
                            .map(str::to_string),
                    );
                }
                rest = &rest[at + member.len()..];
            }
            for op in ["==", "like"] {
                let needle = format!("{expr} {op} \"");
                let mut rest = text.as_str();
                while let Some(at) = rest.find(&needle) {
                    rest = &rest[at + needle.len()..];
                    if let Some(end) = rest.find('"') {
                        found.insert(rest[..end].replace('*', ""));
                        rest = &rest[end..];
                    }
                }
            }
        }
        found
    }

    /// `(what, action, decision)` rows for one HTTP or MCP connection.
    pub(crate) fn reach_api(&self, p: &Probe<'_>) -> Vec<(String, String, Decision)> {
        let mut rows = Vec::new();
        if p.kind == "kubernetes" {
            // Every verb in each namespace policies name, and in any other;
            // and, when policies name resources, for each of them and any other.
            let namespaces = self.named_in("resource.namespace");
            let named_resources = self.named_in("resource.resource");
            let resources = if named_resources.is_empty() {
                vec![(String::new(), String::new())]
            } else {
                named_and_unnamed(&named_resources)
            };
            for ((shown, ns), (res_shown, res)) in named_and_unnamed(&namespaces)
                .into_iter()
                .flat_map(|n| resources.iter().map(move |r| (n.clone(), r.clone())))
            {
                let what = if res_shown.is_empty() {
                    format!("namespace {shown}")
                } else {
                    format!("namespace {shown}, {res_shown}")
                };
                for action in crate::KUBE_ACTIONS.iter().filter(|a| **a != "k8s:other") {
                    let verb = action.trim_start_matches("k8s:");
                    let d = self.decide_kube(&crate::KubeRequestFacts {
                        identity: p.identity,
                        connection: p.connection,
                        client_ip: p.client_ip,
                        now: p.now,
                        approved: false,
                        verb,
                        api_group: "",
                        api_version: "",
                        resource: &res,
                        subresource: "",
                        namespace: &ns,
                        name: "",
                        path: "",
                        query: &[],
                        dry_run: false,
                        command: &[],
                        container: "",
                        tty: false,
                        stdin: false,
                        ports: &[],
                        body_fields: &[],
                        body: &[],
                    });
                    rows.push((what.clone(), action.to_string(), d));
                }
            }
            return rows;
        }
        if p.kind == "mcp" {
            for action in ["mcp:tools/list", "mcp:resources/list", "mcp:session"] {
                rows.push((
                    String::new(),
                    action.to_string(),
                    self.mcp(p, action, "", ""),
                ));
            }
            let tools = self.named_in_conditions("tool");
            for (shown, tool) in named_and_unnamed(&tools) {
                rows.push((
                    shown,
                    "mcp:tools/call".into(),
                    self.mcp(p, "mcp:tools/call", &tool, ""),
                ));
            }
            let uris = self.named_in_conditions("uri");
            for (shown, uri) in named_and_unnamed(&uris) {
                rows.push((
                    shown,
                    "mcp:resources/read".into(),
                    self.mcp(p, "mcp:resources/read", "", &uri),
                ));
            }
            return rows;
        }
        let mut paths = self.named_in_conditions("path");
        paths.insert("/".into());
        for path in paths {
            for method in METHODS {
                let d = self.decide_http(&HttpRequestFacts {
                    identity: p.identity,
                    connection: p.connection,
                    kind: p.kind,
                    client_ip: p.client_ip,
                    now: p.now,
                    approved: false,
                    method,
                    path: &path,
                    query: &[],
                    headers: &[],
                    content_type: "",
                    body_fields: &[],
                    body: &[],
                });
                rows.push((path.clone(), format!("http:{method}"), d));
            }
        }
        rows
    }

    fn mcp(&self, p: &Probe<'_>, action: &str, tool: &str, uri: &str) -> Decision {
        self.decide_mcp(&McpRequestFacts {
            identity: p.identity,
            connection: p.connection,
            client_ip: p.client_ip,
            now: p.now,
            approved: false,
            action,
            method: action.trim_start_matches("mcp:"),
            tool,
            uri,
            prompt: "",
            argument_names: &[],
            arguments: &[],
        })
    }
}

/// Each named value shown as itself, then the stand-in for the rest.
fn named_and_unnamed(named: &BTreeSet<String>) -> Vec<(String, String)> {
    named
        .iter()
        .map(|n| (n.clone(), n.clone()))
        .chain(std::iter::once((
            UNNAMED.to_string(),
            PROBE_NAME.to_string(),
        )))
        .collect()
}
