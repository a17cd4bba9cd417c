//! Deciding one Kubernetes API request: `k8s:<verb>` on the object it
//! names (a `KubeObject` inside the connection), classified as the API
//! server classifies it, with the request's facts as context.

use crate::decide::{s, set, uid};
use crate::http::Asked;
use crate::{Decision, PolicyEngine};
use cedar_policy::{Entity, RestrictedExpression};
use gatehouse_core::{Identity, Timestamp};
use std::collections::HashSet;
use std::net::IpAddr;

/// The Kubernetes actions: `k8s:` and the verb. `get`, `list`, `watch`,
/// `discovery` and `self_review` are in `k8s:read`; `create`, `update`,
/// `patch`, `delete` and `deletecollection` in `k8s:write`; `exec`,
/// `attach`, `portforward` and `proxy` are decided on their own, and
/// `other` is every other path (health, metrics, logs of the node).
pub const KUBE_ACTIONS: &[&str] = &[
    "k8s:get",
    "k8s:list",
    "k8s:watch",
    "k8s:discovery",
    "k8s:self_review",
    "k8s:create",
    "k8s:update",
    "k8s:patch",
    "k8s:delete",
    "k8s:deletecollection",
    "k8s:exec",
    "k8s:attach",
    "k8s:portforward",
    "k8s:proxy",
    "k8s:other",
];

/// One Kubernetes API request as the policy sees it, classified by the
/// adapter from the path and query it forwards.
pub struct KubeRequestFacts<'a> {
    /// The caller.
    pub identity: &'a Identity,
    /// The connection name.
    pub connection: &'a str,
    /// The caller's address.
    pub client_ip: IpAddr,
    /// Now.
    pub now: Timestamp,
    /// Whether a human approved exactly this request.
    pub approved: bool,
    /// The verb: one of [`KUBE_ACTIONS`] without `k8s:` (`delete`).
    pub verb: &'a str,
    /// The API group, `""` for the core group.
    pub api_group: &'a str,
    /// The API version (`v1`), `""` outside resources.
    pub api_version: &'a str,
    /// The resource (`deployments`), `""` outside resources.
    pub resource: &'a str,
    /// The subresource (`log`, `scale`, `exec`), `""` when none.
    pub subresource: &'a str,
    /// The namespace, `""` for cluster-scoped objects.
    pub namespace: &'a str,
    /// The object's name, `""` for a collection.
    pub name: &'a str,
    /// The normalised path after the connection prefix.
    pub path: &'a str,
    /// `name=value` query pairs, decoded.
    pub query: &'a [String],
    /// `dryRun=All`: nothing is changed.
    pub dry_run: bool,
    /// exec: the command's arguments in order; `[]` otherwise.
    pub command: &'a [String],
    /// exec, attach, logs: the container named, `""` when none.
    pub container: &'a str,
    /// exec, attach: a terminal was asked for.
    pub tty: bool,
    /// exec, attach: the caller sends input.
    pub stdin: bool,
    /// port-forward: the pod's ports, when the request names them (the
    /// WebSocket form's `ports`), or the one port of a forwarded
    /// connection as it opens (SPDY names it then).
    pub ports: &'a [u16],
    /// A JSON object body's top-level member names.
    pub body_fields: &'a [String],
    /// Its top-level scalars as `name=value`.
    pub body: &'a [String],
}

/// `command` as one string a condition can match with `like`: the
/// arguments joined by single spaces (`rm -rf /data`).
pub fn command_line(command: &[String]) -> String {
    command.join(" ")
}

impl PolicyEngine {
    /// May the Kubernetes API request be forwarded? A verb outside the
    /// schema's actions is refused (fail closed).
    pub fn decide_kube(&self, r: &KubeRequestFacts<'_>) -> Decision {
        let action = format!("k8s:{}", r.verb);
        let object = match (r.resource, r.namespace, r.name) {
            ("", _, _) => r.path.to_string(),
            (res, "", "") => res.to_string(),
            (res, "", name) => format!("{res}/{name}"),
            (res, ns, "") => format!("{res} in namespace {ns}"),
            (res, ns, name) => format!("{res}/{name} in namespace {ns}"),
        };
        let object = if r.subresource.is_empty() {
            object
        } else {
            format!("{object} ({})", r.subresource)
        };
        let what = format!(
            "{} ({} {object} on {})",
            r.identity.subject, action, r.connection
        );
        if !crate::KUBE_ACTIONS.contains(&action.as_str()) {
            return Decision::Deny {
                reason: format!("{what}: the gateway does not know the verb {}", r.verb),
                policies: Vec::new(),
            };
        }
        let strings = |v: &[String]| set(v.iter().map(String::as_str));
        let resource = |connection: &cedar_policy::EntityUid| {
            let id = format!(
                "{}/{}/{}/{}/{}",
                r.connection, r.api_group, r.resource, r.namespace, r.name
            );
            Entity::new(
                uid(&self.names.kube_object, &id),
                [
                    ("connection".to_string(), s(r.connection)),
                    ("api_group".to_string(), s(r.api_group)),
                    ("api_version".to_string(), s(r.api_version)),
                    ("resource".to_string(), s(r.resource)),
                    ("subresource".to_string(), s(r.subresource)),
                    ("namespace".to_string(), s(r.namespace)),
                    ("name".to_string(), s(r.name)),
                ]
                .into(),
                HashSet::from([connection.clone()]),
            )
            .map(Some)
            .map_err(|e| e.to_string())
        };
        self.decide_on(
            &what,
            &Asked {
                identity: r.identity,
                connection: r.connection,
                kind: "kubernetes",
                client_ip: r.client_ip,
                now: r.now,
                approved: r.approved,
                action: &action,
            },
            resource,
            [
                ("verb", s(r.verb)),
                ("path", s(r.path)),
                ("query", strings(r.query)),
                ("dry_run", RestrictedExpression::new_bool(r.dry_run)),
                ("command", s(&command_line(r.command))),
                ("argv", strings(r.command)),
                ("container", s(r.container)),
                ("tty", RestrictedExpression::new_bool(r.tty)),
                ("stdin", RestrictedExpression::new_bool(r.stdin)),
                (
                    "ports",
                    RestrictedExpression::new_set(
                        r.ports
                            .iter()
                            .map(|p| RestrictedExpression::new_long(i64::from(*p))),
                    ),
                ),
                ("body_fields", strings(r.body_fields)),
                ("body", strings(r.body)),
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    const POLICY: &str = r#"
@id("ci-reads") permit (principal in Gatehouse::Group::"ci", action in Gatehouse::Action::"k8s:read", resource);
@id("ci-writes") permit (principal in Gatehouse::Group::"ci", action in Gatehouse::Action::"k8s:write", resource in Gatehouse::Connection::"prod-cluster");
@id("ci-exec") permit (principal in Gatehouse::Group::"ci", action == Gatehouse::Action::"k8s:exec", resource) unless { context.command like "rm *" };
@id("prod-deletes") @approval("sre") forbid (principal in Gatehouse::Group::"ci", action == Gatehouse::Action::"k8s:delete", resource) when { resource.namespace == "prod" && !context.dry_run };
@id("no-secrets") forbid (principal, action, resource is Gatehouse::KubeObject) when { resource.resource == "secrets" && resource.namespace == "prod" && principal.subject != "vault-sync" };
"#;

    fn engine() -> PolicyEngine {
        PolicyEngine::from_sources(&[(PathBuf::from("k8s.cedar"), POLICY.to_string())])
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn ask(
        verb: &str,
        resource: &str,
        namespace: &str,
        name: &str,
        command: &[&str],
        dry_run: bool,
    ) -> Decision {
        let id = Identity::with_service_token("ci-deploy", vec!["ci".into()], "t");
        let command: Vec<String> = command.iter().map(|c| c.to_string()).collect();
        engine().decide_kube(&KubeRequestFacts {
            identity: &id,
            connection: "prod-cluster",
            client_ip: "127.0.0.1".parse().unwrap(),
            now: Timestamp::now(),
            approved: false,
            verb,
            api_group: "apps",
            api_version: "v1",
            resource,
            subresource: "",
            namespace,
            name,
            path: "/apis/apps/v1/namespaces/prod/deployments/web",
            query: &[],
            dry_run,
            command: &command,
            container: "",
            tty: false,
            stdin: false,
            ports: &[],
            body_fields: &[],
            body: &[],
        })
    }

    #[test]
    fn verbs_namespaces_and_commands_decide() {
        assert!(matches!(
            ask("get", "deployments", "prod", "web", &[], false),
            Decision::Allow { .. }
        ));
        assert!(matches!(
            ask("delete", "deployments", "dev", "web", &[], false),
            Decision::Allow { .. }
        ));
        match ask("delete", "deployments", "prod", "web", &[], false) {
            Decision::Review { routes, reason, .. } => {
                assert_eq!(routes, ["sre"]);
                assert!(
                    reason.contains("k8s:delete deployments/web in namespace prod"),
                    "{reason}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            ask("delete", "deployments", "prod", "web", &[], true),
            Decision::Allow { .. }
        ));
        assert!(matches!(
            ask("exec", "pods", "prod", "web-1", &["ls", "/"], false),
            Decision::Allow { .. }
        ));
        match ask(
            "exec",
            "pods",
            "prod",
            "web-1",
            &["rm", "-rf", "/data"],
            false,
        ) {
            Decision::Deny { reason, .. } => {
                assert!(reason.contains("no policy permits"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        match ask("get", "secrets", "prod", "db", &[], false) {
            Decision::Deny { policies, .. } => assert_eq!(policies, ["no-secrets"]),
            other => panic!("{other:?}"),
        }
        // Not granted: no permit names attach.
        assert!(matches!(
            ask("attach", "pods", "prod", "web-1", &[], false),
            Decision::Deny { .. }
        ));
        match ask("frobnicate", "pods", "prod", "web-1", &[], false) {
            Decision::Deny { reason, .. } => {
                assert!(reason.contains("does not know the verb"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }
}
