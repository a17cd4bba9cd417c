//! One request → the policy's decision → forward or refuse, with approvals:
//! taken when one covers the exact request, filed (and in hold mode waited
//! for) when none does.

use crate::path::NormalPath;
use crate::refusals::{self, Problem};
use gatehouse_core::{
    statement_fingerprint, ActionToApprove, ApprovalId, Decided, DecisionRecord, Identity,
    SessionId, Timestamp,
};
use gatehouse_policy::{
    Decision, HttpRequestFacts, KubeRequestFacts, McpRequestFacts, PolicyHandle, PolicyMode,
};
use gatehouse_session::gate::{record, Refusal, Verdict as CoreVerdict};
use gatehouse_session::Session;
use http::request::Parts;
use std::net::IpAddr;

/// The largest request body an approval can be asked for: the approver is
/// shown all of it.
pub(crate) const APPROVAL_BODY_LIMIT: usize = 64 * 1024;

/// Headers a policy never sees: the caller's credentials.
const PRIVATE_HEADERS: &[&str] = &["authorization", "proxy-authorization", "cookie"];

/// What the gateway knows of a request, as it will forward it.
pub(crate) struct RequestFacts {
    pub(crate) method: String,
    pub(crate) path: NormalPath,
    pub(crate) raw_query: Option<String>,
    query: Vec<String>,
    headers: Vec<String>,
    content_type: String,
    body_fields: Vec<String>,
    body: Vec<String>,
    /// The MCP message, on an `mcp` connection.
    pub(crate) mcp: Option<crate::mcp::McpCall>,
    /// The request as the API server reads it, on a `kubernetes` connection.
    pub(crate) kube: Option<crate::kube::KubeRequest>,
}

/// Headers that change with every sending of the same request (tracing,
/// what the client and gateway add): not part of what an approval binds.
const VOLATILE_HEADERS: &[&str] = &[
    "user-agent",
    "date",
    "traceparent",
    "tracestate",
    "x-request-id",
    "x-amzn-trace-id",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-sampled",
    "accept-encoding",
    // kubectl: one id per invocation, and a WebSocket upgrade's nonce.
    "kubectl-session",
    "sec-websocket-key",
];

impl RequestFacts {
    /// Reads the facts of a request whose path after the connection is
    /// `path`, from the headers and body it will be forwarded with. A body
    /// that claims or looks like JSON but does not parse is refused: a
    /// policy on its fields could not be decided, and the upstream's parser
    /// might read it all the same.
    pub(crate) fn new(
        parts: &Parts,
        forwarded: &http::HeaderMap,
        path: NormalPath,
        body: &[u8],
    ) -> Result<Self, String> {
        let raw_query = parts.uri.query().map(str::to_string);
        let query = raw_query
            .as_deref()
            .map(|q| form_pairs(q.as_bytes()))
            .unwrap_or_default();
        let headers = forwarded
            .iter()
            .filter(|(n, _)| !PRIVATE_HEADERS.contains(&n.as_str()))
            .map(|(n, v)| format!("{}: {}", n.as_str(), String::from_utf8_lossy(v.as_bytes())))
            .collect();
        let content_type = forwarded
            .get(http::header::CONTENT_TYPE)
            .map(|v| crate::response::media_type(&String::from_utf8_lossy(v.as_bytes())))
            .unwrap_or_default();
        let (body_fields, body) = body_facts(&content_type, body)?;
        Ok(Self {
            method: parts.method.as_str().to_string(),
            path,
            raw_query,
            query,
            headers,
            content_type,
            body_fields,
            body,
            mcp: None,
            kube: None,
        })
    }

    /// The request line as decided and recorded (before masking):
    /// `GET /v1/invoices?status=open`.
    pub(crate) fn text(&self) -> String {
        if let Some(call) = &self.mcp {
            return call.text.clone();
        }
        match &self.raw_query {
            Some(q) => format!("{} {}?{q}", self.method, self.path.forward()),
            None => format!("{} {}", self.method, self.path.forward()),
        }
    }

    /// The forwarded headers an approval binds: all but the volatile ones, sorted.
    fn bound_headers(&self) -> String {
        let mut h: Vec<&String> = self
            .headers
            .iter()
            .filter(|l| {
                let name = l.split(':').next().unwrap_or("");
                !VOLATILE_HEADERS.contains(&name)
            })
            .collect();
        h.sort();
        h.into_iter().map(|l| format!("{l}\n")).collect()
    }
}

/// `name=value` pairs (a bare name: `name`) of a query or form body, decoded.
fn form_pairs(raw: &[u8]) -> Vec<String> {
    url::form_urlencoded::parse(raw)
        .map(|(k, v)| {
            if v.is_empty() {
                k.into_owned()
            } else {
                format!("{k}={v}")
            }
        })
        .collect()
}

/// A body's top-level member names and `name=value` scalars: of a JSON
/// object, or of a form. `Err` when the body claims or looks like JSON and
/// is not JSON the gateway can read (UTF-16, NaN, numbers out of range,
/// lone surrogates, nesting past 128).
fn body_facts(content_type: &str, body: &[u8]) -> Result<(Vec<String>, Vec<String>), String> {
    if body.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    if content_type == "application/x-www-form-urlencoded" {
        let pairs = form_pairs(body);
        let names = pairs
            .iter()
            .map(|p| p.split('=').next().unwrap_or("").to_string())
            .collect();
        return Ok((names, pairs));
    }
    if body.starts_with(&[0xFE, 0xFF])
        || body.starts_with(&[0xFF, 0xFE])
        || body.starts_with(&[0, 0])
    {
        return Err(
            "the body is UTF-16 or UTF-32, which the gateway does not read; send UTF-8".into(),
        );
    }
    let text = body
        .strip_prefix(b"\xEF\xBB\xBF".as_slice())
        .unwrap_or(body);
    let looks_json = matches!(text.trim_ascii_start().first(), Some(b'{' | b'['));
    let says_json = content_type == "application/json" || content_type.ends_with("+json");
    if !looks_json && !says_json {
        return Ok((Vec::new(), Vec::new()));
    }
    match serde_json::from_slice::<serde_json::Value>(text) {
        Ok(v) => match (crate::mcp::ambiguous_keys(&v), v) {
            (Some(why), _) => Err(format!("the body's JSON is ambiguous: {why}")),
            (None, serde_json::Value::Object(m)) => Ok(crate::mcp::scalars(&m)),
            (None, _) => Ok((Vec::new(), Vec::new())),
        },
        Err(e) => Err(format!(
            "the body is not JSON the gateway can read ({e}), so its fields cannot be decided"
        )),
    }
}

/// The gate's answer.
pub(crate) enum Verdict {
    /// Forward it; `approval` is used once it goes ahead.
    Forward {
        record: DecisionRecord,
        approval: Option<ApprovalId>,
    },
    /// Refuse it with this problem.
    Refuse {
        record: DecisionRecord,
        problem: Problem,
    },
}

/// Who asks, for what, where: everything a decision needs.
pub(crate) struct Asking<'a> {
    /// Masks what records keep (a reason quoting the request).
    pub(crate) mask: &'a (dyn Fn(&str) -> String + Sync),
    pub(crate) identity: &'a Identity,
    pub(crate) connection: &'a str,
    pub(crate) client_ip: IpAddr,
    pub(crate) session: SessionId,
    pub(crate) seq: u64,
    /// The request line as recorded (masked).
    pub(crate) recorded_text: &'a str,
    /// The whole body as an approver sees it (masked); `None`: too large.
    pub(crate) approval_body: Option<&'a [Option<String>]>,
    pub(crate) body: &'a [u8],
}

/// Decides a request; in hold mode waits for its approval.
pub(crate) async fn decide(
    policy: &PolicyHandle,
    session: &Session,
    facts: &RequestFacts,
    a: &Asking<'_>,
) -> Verdict {
    let decide_as = |approved: bool| {
        let (engine, _) = policy.current();
        if let Some(call) = &facts.mcp {
            return engine.decide_mcp(&mcp_facts(a, call, approved));
        }
        if let Some(k) = &facts.kube {
            return engine.decide_kube(&KubeRequestFacts {
                query: &facts.query,
                body_fields: &facts.body_fields,
                body: &facts.body,
                ..k.facts(
                    a.identity,
                    a.connection,
                    a.client_ip,
                    approved,
                    facts.path.decoded(),
                )
            });
        }
        engine.decide_http(&HttpRequestFacts {
            identity: a.identity,
            connection: a.connection,
            kind: "http",
            client_ip: a.client_ip,
            now: Timestamp::now(),
            approved,
            method: &facts.method,
            path: facts.path.decoded(),
            query: &facts.query,
            headers: &facts.headers,
            content_type: &facts.content_type,
            body_fields: &facts.body_fields,
            body: &facts.body,
        })
    };
    let mode = policy.mode();
    if let Some(call) = facts.mcp.as_ref().filter(|c| !c.batch.is_empty()) {
        return decide_batch(policy, a, &call.batch);
    }
    let decision = decide_as(false);
    match (&decision, mode) {
        (Decision::Allow { .. }, _) => Verdict::Forward {
            record: record(&decision, mode, false),
            approval: None,
        },
        (_, PolicyMode::Audit) => Verdict::Forward {
            record: record(&decision, mode, true),
            approval: None,
        },
        (Decision::Deny { reason, policies }, PolicyMode::Enforce) => Verdict::Refuse {
            problem: refusals::denied(reason, policies),
            record: record(&decision, mode, false),
        },
        (
            Decision::Review {
                routes,
                reason,
                policies,
            },
            PolicyMode::Enforce,
        ) => {
            let base = record(&decision, mode, false);
            if !session.takes_approvals() {
                return Verdict::Refuse {
                    problem: refusals::denied(reason, policies),
                    record: base,
                };
            }
            let Some(shown) = a.approval_body else {
                let why = format!(
                    "{reason}, and its body is over {APPROVAL_BODY_LIMIT} bytes, more than an approver can be shown"
                );
                return Verdict::Refuse {
                    problem: refusals::denied(&why, policies),
                    record: DecisionRecord {
                        reason: Some(why.clone()),
                        ..base
                    },
                };
            };
            let fingerprint = fingerprint(a, facts);
            let asked = ActionToApprove {
                routes,
                requester: a.identity,
                connection: a.connection,
                session: a.session,
                seq: a.seq,
                text: a.recorded_text,
                params: shown,
                fingerprint: &fingerprint,
                policies,
                analysis: &(a.mask)(reason),
                reason: None,
                max_rows: None,
            };
            approve(session, &asked, base, &decide_as).await
        }
    }
}

/// What the policy is asked about one MCP message.
fn mcp_facts<'a>(
    a: &'a Asking<'_>,
    call: &'a crate::mcp::McpCall,
    approved: bool,
) -> McpRequestFacts<'a> {
    McpRequestFacts {
        identity: a.identity,
        connection: a.connection,
        client_ip: a.client_ip,
        now: Timestamp::now(),
        approved,
        action: call.action,
        method: &call.method,
        tool: &call.tool,
        uri: &call.uri,
        prompt: &call.prompt,
        argument_names: &call.argument_names,
        arguments: &call.arguments,
    }
}

/// A batch of MCP messages: each decided; forwarded only when all are
/// allowed. One that needs approval refuses the batch (an approval binds
/// one message: it is sent alone).
fn decide_batch(policy: &PolicyHandle, a: &Asking<'_>, calls: &[crate::mcp::McpCall]) -> Verdict {
    let (engine, _) = policy.current();
    let mode = policy.mode();
    let mut allowed: Vec<String> = Vec::new();
    for (i, call) in calls.iter().enumerate() {
        let d = engine.decide_mcp(&mcp_facts(a, call, false));
        let reason = match &d {
            Decision::Allow { policies, .. } => {
                allowed.extend(policies.iter().cloned());
                continue;
            }
            Decision::Deny { reason, .. } => format!("message {} of the batch: {reason}", i + 1),
            Decision::Review { reason, .. } => format!(
                "message {} of the batch: {reason}; a batch is not approved as a whole: send that message alone",
                i + 1
            ),
        };
        let mut record = record(&d, mode, mode == PolicyMode::Audit);
        record.reason = Some(reason.clone());
        if mode == PolicyMode::Audit {
            return Verdict::Forward {
                record,
                approval: None,
            };
        }
        record.decision = Decided::Deny;
        return Verdict::Refuse {
            problem: refusals::denied(&reason, d.policies()),
            record,
        };
    }
    allowed.sort();
    allowed.dedup();
    Verdict::Forward {
        record: DecisionRecord {
            decision: Decided::Allow,
            policies: allowed,
            mode: mode.recorded(),
            reason: None,
        },
        approval: None,
    }
}

/// What an approval of this exact request is bound to: who, where, the
/// method, path and query as forwarded, its headers (but volatile ones)
/// and the body's bytes; for an MCP
/// message its method, name and arguments (not its JSON-RPC id, which
/// changes with every call).
fn fingerprint(a: &Asking<'_>, facts: &RequestFacts) -> String {
    match &facts.mcp {
        Some(call) => {
            // Method, name and arguments apart, so no two calls share one.
            let args = call.canonical_args.as_str();
            let name = [&call.tool, &call.uri, &call.prompt]
                .into_iter()
                .find(|s| !s.is_empty())
                .map_or("", |s| s.as_str());
            statement_fingerprint(
                &a.identity.subject,
                a.connection,
                "mcp",
                &call.method,
                &[Some(name.as_bytes()), Some(args.as_bytes())],
            )
        }
        None => statement_fingerprint(
            &a.identity.subject,
            a.connection,
            if facts.kube.is_some() {
                "kubernetes"
            } else {
                "http"
            },
            &facts.text(),
            &[Some(facts.bound_headers().as_bytes()), Some(a.body)],
        ),
    }
}

/// Whether a listing may show this entry to the caller: using it (a call of
/// the tool without arguments, a read of the resource, a get of the prompt)
/// would not be denied (it may be allowed or need approval).
pub(crate) fn may_list(
    policy: &PolicyHandle,
    identity: &Identity,
    connection: &str,
    client_ip: IpAddr,
    listed: crate::mcp::Listed,
    key: &str,
) -> bool {
    use crate::mcp::Listed;
    if policy.mode() == PolicyMode::Audit {
        return true;
    }
    let (action, method, tool, uri, prompt) = match listed {
        Listed::Tools => ("mcp:tools/call", "tools/call", key, "", ""),
        Listed::Resources => ("mcp:resources/read", "resources/read", "", key, ""),
        Listed::Prompts => ("mcp:prompts/get", "prompts/get", "", "", key),
    };
    let (engine, _) = policy.current();
    let d = engine.decide_mcp(&McpRequestFacts {
        identity,
        connection,
        client_ip,
        now: Timestamp::now(),
        approved: false,
        action,
        method,
        tool,
        uri,
        prompt,
        argument_names: &[],
        arguments: &[],
    });
    !matches!(d, Decision::Deny { .. })
}

/// An action that needs approval, through the core's approval flow: taken,
/// refused naming its request, or held here until decided.
async fn approve(
    session: &Session,
    asked: &ActionToApprove<'_>,
    base: DecisionRecord,
    decide_as: &(impl Fn(bool) -> Decision + Sync),
) -> Verdict {
    let verdict = match gatehouse_session::gate::ask_approval(session, asked, base, decide_as).await
    {
        // Hold mode: the caller's request waits for the decision.
        CoreVerdict::Held(held) => held.wait(session, decide_as).await,
        v => v,
    };
    match verdict {
        CoreVerdict::Forward { record, approval } => Verdict::Forward { record, approval },
        CoreVerdict::Refuse { record, refusal } => Verdict::Refuse {
            problem: problem(&refusal),
            record,
        },
        CoreVerdict::Held(_) => unreachable!("a held request is waited for above"),
    }
}

/// The core's refusal as a problem document.
fn problem(r: &Refusal) -> Problem {
    match r {
        Refusal::Denied { reason, policies } => refusals::denied(reason, policies),
        Refusal::ApprovalRequired {
            reason,
            id,
            approver_groups,
            valid_for,
        } => refusals::approval_required(
            reason,
            &id.to_string(),
            approver_groups,
            &humantime::format_duration(*valid_for).to_string(),
        ),
        Refusal::ApprovalOutcome { id, outcome } => {
            refusals::approval_outcome(&id.to_string(), *outcome == "denied", *outcome == "expired")
        }
        Refusal::TooManyFiled(why) => refusals::too_many_requests(why),
        Refusal::TooManyPending(why) => refusals::too_many_pending(why),
        Refusal::EvidenceUnavailable => refusals::evidence_unavailable(),
    }
}

#[cfg(test)]
mod tests;
