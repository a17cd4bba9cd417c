//! `[[approval.route]]`: who decides the statements `@approval("route")`
//! policies hold, and how they wait.

use gatehouse_core::{ApprovalMode, ApprovalRoute};
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ApprovalSection {
    #[serde(default)]
    route: Vec<RouteSection>,
    #[serde(default)]
    webhook: Vec<WebhookSection>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookSection {
    url: Option<String>,
    format: Option<String>,
}

/// Where approval notices are POSTed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSpec {
    /// The endpoint (http or https).
    pub url: String,
    /// The body's shape.
    pub format: WebhookFormat,
}

/// A webhook body's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookFormat {
    /// `{"event", "request", "approve_command", "deny_command"}`.
    Json,
    /// A Slack-compatible message (`text` and `blocks`).
    Slack,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteSection {
    name: Option<String>,
    #[serde(default)]
    approvers: Vec<String>,
    approvals_needed: Option<u32>,
    #[serde(default)]
    allow_self_approval: bool,
    mode: Option<String>,
    request_ttl: Option<String>,
    hold_timeout: Option<String>,
    valid_for: Option<String>,
}

const DEFAULT_REQUEST_TTL: Duration = Duration::from_secs(3600);
const DEFAULT_HOLD_TIMEOUT: Duration = Duration::from_secs(300);
const DEFAULT_VALID_FOR: Duration = Duration::from_secs(900);

impl ApprovalSection {
    /// Checks every webhook.
    pub(super) fn webhooks(
        &self,
        problem: &mut dyn FnMut(String, String),
    ) -> Option<Vec<WebhookSpec>> {
        let mut ok = true;
        let mut out = Vec::new();
        for (i, w) in self.webhook.iter().enumerate() {
            let url = w.url.clone().unwrap_or_default();
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                ok = false;
                problem(
                    format!("approval.webhook[{i}].url"),
                    format!("{url:?} is not an http:// or https:// URL"),
                );
            }
            let format = match w.format.as_deref() {
                None | Some("json") => WebhookFormat::Json,
                Some("slack") => WebhookFormat::Slack,
                Some(other) => {
                    ok = false;
                    problem(
                        format!("approval.webhook[{i}].format"),
                        format!("{other:?} is not a webhook format: use \"json\" or \"slack\""),
                    );
                    WebhookFormat::Json
                }
            };
            out.push(WebhookSpec { url, format });
        }
        ok.then_some(out)
    }

    /// Checks every route.
    pub(super) fn resolve(
        &self,
        problem: &mut dyn FnMut(String, String),
    ) -> Option<Vec<ApprovalRoute>> {
        let mut ok = true;
        let mut routes: Vec<ApprovalRoute> = Vec::new();
        for (i, r) in self.route.iter().enumerate() {
            let mut bad = |field: &str, reason: String| {
                ok = false;
                problem(format!("approval.route[{i}].{field}"), reason);
            };
            let name = r.name.clone().unwrap_or_default();
            if name.is_empty() || name.contains(char::is_whitespace) {
                bad(
                    "name",
                    format!("{name:?} cannot name a route: policies name it in @approval(\"…\"), e.g. \"dba\""),
                );
            } else if routes.iter().any(|x| x.name == name) {
                bad("name", format!("route {name:?} is defined twice"));
            }
            if r.approvers.is_empty() {
                bad(
                    "approvers",
                    "missing: the groups whose members may approve, e.g. [\"dba-leads\"]".into(),
                );
            }
            let approvals_needed = r.approvals_needed.unwrap_or(1);
            if approvals_needed == 0 {
                bad(
                    "approvals_needed",
                    "must be at least 1: an approval nobody gives is no approval".into(),
                );
            }
            let mode = match r.mode.as_deref() {
                None | Some("request") => ApprovalMode::Request,
                Some("hold") => ApprovalMode::Hold,
                Some(other) => {
                    bad(
                        "mode",
                        format!("{other:?} is not a mode: use \"request\" (refused with a request id, run again once approved) or \"hold\" (the statement waits until decided)"),
                    );
                    ApprovalMode::Request
                }
            };
            let mut duration = |field: &str, v: &Option<String>, default: Duration| match v {
                None => default,
                Some(s) => super::parse_duration(s).unwrap_or_else(|reason| {
                    bad(field, reason);
                    default
                }),
            };
            let request_ttl = duration("request_ttl", &r.request_ttl, DEFAULT_REQUEST_TTL);
            let hold_timeout = duration("hold_timeout", &r.hold_timeout, DEFAULT_HOLD_TIMEOUT);
            let valid_for = duration("valid_for", &r.valid_for, DEFAULT_VALID_FOR);
            if r.hold_timeout.is_some() && hold_timeout > request_ttl {
                bad(
                    "hold_timeout",
                    "is longer than request_ttl: a held statement cannot wait longer than its request lives".into(),
                );
            }
            // The default never outlives the request.
            let hold_timeout = hold_timeout.min(request_ttl);
            routes.push(ApprovalRoute {
                name,
                approver_groups: r.approvers.clone(),
                approvals_needed,
                allow_self_approval: r.allow_self_approval,
                mode,
                request_ttl,
                hold_timeout,
                valid_for,
            });
        }
        ok.then_some(routes)
    }
}
