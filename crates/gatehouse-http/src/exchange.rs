//! One request from a caller to its answer: route, authenticate, open the
//! session, decide, write ahead, forward, stream the response back masked,
//! record.

use crate::answer::{error_chain, mask_for_record, recorded_headers, Finisher};
use crate::gate::{self, Asking, RequestFacts, Verdict};
use crate::listener::HttpGateway;
use crate::path::NormalPath;
use crate::refusals::{self, Body, Problem};
use crate::session::CallerConnection;
use crate::{upstream, Dialect, HttpTarget};
use bytes::Bytes;
use gatehouse_core::{ActionOutcome, DecisionRecord, HttpExchange, MaskingSummary, Timestamp};
use gatehouse_mask::MaskingEngine;
use gatehouse_session::{DecidedAction, Session, SessionError};
use http::{header, Request, Response};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use std::sync::Arc;

mod forward;
mod upgraded;

/// Handles one request; every outcome is a response (refusals included).
pub(crate) async fn handle(
    gw: &HttpGateway,
    caller: &CallerConnection,
    req: Request<Incoming>,
) -> Response<Body> {
    match Exchange::begin(gw, caller, req).await {
        Ok(resp) | Err(resp) => resp,
    }
}

struct Exchange<'a> {
    gw: &'a HttpGateway,
    caller: &'a CallerConnection,
    target: Arc<HttpTarget>,
    session: Session,
    seq: u64,
    text: String,
    params: Vec<Option<String>>,
    /// What an approval request shows of the body; `None`: too large.
    approval_body: Option<Vec<Option<String>>>,
    /// What the record keeps of the request and its response.
    exchange: HttpExchange,
    /// Masks what records keep (the connection's engine, or secrets only).
    record_engine: Arc<MaskingEngine>,
    /// MCP: the message's JSON-RPC id (refusals are JSON-RPC errors).
    rpc: Option<Option<serde_json::Value>>,
    /// The exempt group the caller is in, when masking spares it.
    exempt_group: Option<String>,
    /// The gateway's upstream credential in the forms it must not leave in.
    secrets: Arc<[String]>,
    /// Kubernetes exec, attach, port-forward: the caller's side of the
    /// upgrade, and the protocol asked for.
    on_upgrade: Option<hyper::upgrade::OnUpgrade>,
    upgrade_to: Option<&'static str>,
    /// Kubernetes: the request as the API server reads it.
    kube: Option<crate::kube::KubeRequest>,
}

impl<'a> Exchange<'a> {
    async fn begin(
        gw: &'a HttpGateway,
        caller: &'a CallerConnection,
        mut req: Request<Incoming>,
    ) -> Result<Response<Body>, Response<Body>> {
        let s = &gw.settings;
        let upgrade =
            req.method() == http::Method::CONNECT || req.headers().contains_key(header::UPGRADE);
        let upgrade_to = req
            .headers()
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .map(|v| upgraded::relayed_upgrade(v).ok_or_else(|| v.to_string()));
        // Route: a host name mapped to a connection, else the first segment.
        let path = NormalPath::parse(req.uri().path())
            .map_err(|e| refusals::bad_path(&e.to_string()).response())?;
        if path.decoded().contains(';') {
            return Err(refusals::bad_path(
                "the path has a path parameter (;), which some upstreams drop before routing",
            )
            .response());
        }
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(|h| {
                h.rsplit_once(':')
                    .map_or(h, |(name, _)| name)
                    .to_ascii_lowercase()
            });
        let by_host = host.as_deref().and_then(|h| {
            s.connections
                .values()
                .find(|t| t.hosts.iter().any(|x| x == h))
                .cloned()
        });
        let (target, rest) = match by_host {
            Some(t) => (t, path),
            None => {
                let (name, rest) = path
                    .split_first()
                    .ok_or_else(|| refusals::no_connection(None).response())?;
                let t = s
                    .connections
                    .get(name)
                    .cloned()
                    .ok_or_else(|| refusals::no_connection(Some(name)).response())?;
                (t, rest)
            }
        };

        let mcp = target.dialect == Dialect::Mcp;
        let kube = target.dialect == Dialect::Kubernetes;
        let early = |p: Problem| {
            if mcp {
                crate::mcp::error_response(&p, None)
            } else if kube {
                crate::kube::status_response(&p)
            } else {
                p.response()
            }
        };
        if upgrade && (!kube || req.method() == http::Method::CONNECT) {
            return Err(early(refusals::upgrade_refused()));
        }
        let upgrade_to = match upgrade_to {
            None => None,
            Some(Ok(u)) => Some(u),
            Some(Err(asked)) => {
                return Err(early(refusals::upgrade_not_relayed(&format!(
                    "the upgrade to {asked:?} is not relayed"
                ))))
            }
        };
        let on_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
        let session = crate::login::login(gw, caller, &target, req.headers())
            .await
            .map_err(early)?;
        let (parts, body) = req.into_parts();
        let collect = Limited::new(body, s.max_request_body).collect();
        let mut body = match tokio::time::timeout(s.header_timeout, collect).await {
            Err(_) => {
                return Err(early(refusals::bad_body(
                    "it did not arrive within the header timeout",
                )))
            }
            Ok(Ok(b)) => b.to_bytes(),
            Ok(Err(e)) => {
                let p = if e.is::<http_body_util::LengthLimitError>() {
                    refusals::body_too_large(s.max_request_body)
                } else {
                    refusals::bad_body(&e.to_string())
                };
                return Err(early(p));
            }
        };
        session.counters().read(body.len());
        let call = if mcp {
            if rest.decoded() != "/" {
                return Err(early(refusals::not_an_mcp_endpoint(&target.name)));
            }
            Some(match parts.method {
                http::Method::POST => {
                    let (posted, canonical) =
                        crate::mcp::parse_posted(&body, &parts.headers).map_err(early)?;
                    body = canonical;
                    match posted {
                        crate::mcp::Posted::One(c) => *c,
                        crate::mcp::Posted::Batch(calls) => crate::mcp::McpCall::batch(calls),
                    }
                }
                http::Method::GET | http::Method::DELETE => {
                    // Nothing undecided goes along.
                    body = Bytes::new();
                    crate::mcp::session_request(&parts.method)
                }
                ref other => return Err(early(refusals::method_not_allowed(other.as_str()))),
            })
        } else {
            None
        };
        // Decided once per request: whom masking spares, and the
        // credentials to keep from the caller.
        let exempt_group = target.masking.as_ref().and_then(|m| {
            session
                .identity()
                .groups
                .iter()
                .find(|g| m.exempt_groups.contains(g))
                .cloned()
        });
        let masked = target.masking.is_some() && exempt_group.is_none();
        let secrets: Arc<[String]> = upstream::secrets(&target.auth).into();
        // Kubernetes answers are read whole and unencoded always: records
        // of Secrets are masked even for a caller masking spares.
        let whole = mcp || kube || masked || !secrets.is_empty();
        let mut forwarded = upstream::forwardable(&parts.headers, whole)
            .map_err(|e| early(refusals::bad_message(&e)))?;
        if kube {
            if let Some(h) = crate::kube::masking::impersonation_asked(&forwarded) {
                return Err(early(refusals::impersonation_refused(&h)));
            }
            crate::kube::masking::json_only(&mut forwarded);
        }
        if mcp {
            if parts.uri.query().is_some() {
                return Err(early(refusals::bad_message(
                    "an MCP endpoint takes no query string",
                )));
            }
            upstream::mcp_only(&mut forwarded);
            // A session id belongs to the identity that opened it.
            if let Some(sid) = forwarded
                .get("mcp-session-id")
                .and_then(|v| v.to_str().ok())
            {
                if !gw.mcp_session_is(sid, &session.identity().subject) {
                    return Err(early(refusals::unknown_mcp_session()));
                }
            }
        }
        let kube_request = kube
            .then(|| {
                crate::kube::KubeRequest::of_request(
                    &parts.method,
                    parts.uri.query(),
                    rest.segments(),
                    &body,
                    upgrade_to.is_some(),
                )
            })
            .transpose()
            .map_err(early)?;
        let mut facts = RequestFacts::new(&parts, &forwarded, rest, &body)
            .map_err(|e| early(refusals::bad_body(&e)))?;
        facts.mcp = call;
        facts.kube = kube_request;
        let about_secrets = facts.kube.as_ref().is_some_and(|k| k.names_secrets());
        let record_engine: &MaskingEngine = match &target.masking {
            Some(m) => m.engine_for(about_secrets),
            None => &s.record_masking,
        };
        let text = crate::answer::cut(
            &crate::answer::mask_request_line(record_engine, &facts.text()),
            target.record_body_limit.max(1024),
        );
        // A body that writes a Secret (JSON or protobuf) holds its values in
        // clear: neither records nor approvers see more than its size and hash.
        let withheld = (about_secrets && !body.is_empty()).then(|| {
            use sha2::Digest;
            let digest = hex::encode(sha2::Sha256::digest(&body));
            format!(
                "(a Secret's body: {} bytes, sha256 {}; its values are not recorded)",
                body.len(),
                &digest[..16]
            )
        });
        let params = if body.is_empty() || facts.mcp.is_some() {
            Vec::new()
        } else if let Some(note) = &withheld {
            vec![Some(note.clone())]
        } else {
            let keep = &body[..body.len().min(target.record_body_limit)];
            let mut p = mask_for_record(record_engine, &String::from_utf8_lossy(keep));
            if keep.len() < body.len() {
                p.push_str(&format!("… ({} bytes)", body.len()));
            }
            vec![Some(p)]
        };
        // An approver sees the whole body (masked), or the request is too
        // large to be approved.
        let approval_body = if let Some(call) = &facts.mcp {
            // The whole call (the record's text may be cut).
            (call.text.len() <= gate::APPROVAL_BODY_LIMIT)
                .then(|| vec![Some(mask_for_record(record_engine, &call.text))])
        } else if body.is_empty() {
            Some(Vec::new())
        } else if let Some(note) = withheld {
            Some(vec![Some(note)])
        } else if body.len() <= gate::APPROVAL_BODY_LIMIT {
            Some(vec![Some(mask_for_record(
                record_engine,
                &String::from_utf8_lossy(&body),
            ))])
        } else {
            None
        };
        let exchange = HttpExchange {
            request_headers: recorded_headers(record_engine, &forwarded),
            request_bytes: body.len() as u64,
            ..HttpExchange::default()
        };
        let record_engine = match &target.masking {
            Some(m) => m.engine_for(about_secrets).clone(),
            None => s.record_masking.clone(),
        };
        let ex = Exchange {
            gw,
            caller,
            session: session.clone(),
            seq: session.next_seq(),
            target,
            text,
            params,
            approval_body,
            exchange,
            record_engine,
            rpc: facts.mcp.as_ref().map(|c| c.id.clone()),
            exempt_group,
            secrets,
            on_upgrade,
            upgrade_to,
            kube: facts.kube.clone(),
        };
        ex.decide_and_forward(parts, forwarded, facts, body).await
    }

    /// A refusal in the caller's terms: a problem document, or for MCP a
    /// JSON-RPC error.
    fn render(&self, p: &Problem) -> Response<Body> {
        match &self.rpc {
            Some(id) => crate::mcp::error_response(p, id.as_ref()),
            None if self.target.dialect == Dialect::Kubernetes => crate::kube::status_response(p),
            None => p.response(),
        }
    }

    async fn decide_and_forward(
        self,
        parts: http::request::Parts,
        forwarded: http::HeaderMap,
        facts: RequestFacts,
        body: Bytes,
    ) -> Result<Response<Body>, Response<Body>> {
        let s = &self.gw.settings;
        let engine = self.record_engine.clone();
        let mask = move |t: &str| mask_for_record(&engine, t);
        let asking = Asking {
            mask: &mask,
            identity: self.session.identity(),
            connection: &self.target.name,
            client_ip: self.caller.peer.ip(),
            session: self.session.id(),
            seq: self.seq,
            recorded_text: &self.text,
            approval_body: self.approval_body.as_deref(),
            body: &body,
        };
        let verdict = gate::decide(&s.policy, &self.session, &facts, &asking).await;
        // Reasons quote the request (its path, a tool's URI): masked like the text.
        let verdict = match verdict {
            Verdict::Refuse {
                mut record,
                problem,
            } => {
                record.reason = record.reason.map(|r| mask(&r));
                Verdict::Refuse { record, problem }
            }
            Verdict::Forward {
                mut record,
                approval,
            } => {
                record.reason = record.reason.map(|r| mask(&r));
                Verdict::Forward { record, approval }
            }
        };
        let started = Timestamp::now();
        let clock = std::time::Instant::now();
        match verdict {
            Verdict::Refuse { record, problem } => {
                if self.write_ahead(&record, None).await.is_err() {
                    return Err(self.render(&refusals::evidence_unavailable()));
                }
                Err(self.refused(&problem, record, started, clock).await)
            }
            Verdict::Forward { record, approval } => {
                match self.write_ahead(&record, approval).await {
                    Ok(()) => {
                        self.forward(parts, forwarded, facts, body, record, started, clock)
                            .await
                    }
                    // The decision is durable, the approval could not be taken:
                    // refused, and recorded as refused.
                    Err(SessionError::Approval(_)) => {
                        let problem = refusals::evidence_unavailable();
                        Err(self.refused(&problem, record, started, clock).await)
                    }
                    Err(_) => Err(self.render(&refusals::evidence_unavailable())),
                }
            }
        }
    }

    /// The decision (and the approval it runs on) is durable in the
    /// evidence log before anything is forwarded.
    async fn write_ahead(
        &self,
        decision: &DecisionRecord,
        approval: Option<gatehouse_core::ApprovalId>,
    ) -> Result<(), SessionError> {
        let mut w = self.session.write_ahead();
        w.decided(DecidedAction {
            seq: self.seq,
            flavour: self.session.protocol().as_str(),
            text: &self.text,
            parameters: self.params.len(),
            decision,
            // Waited for whole (`commit`): nothing runs before it is durable.
            reads_only: false,
        });
        if let Some(id) = approval {
            w.take(id);
        }
        self.session.commit(&mut w).await.inspect_err(|e| {
            tracing::error!(error = %e, "could not log a request; refusing it");
        })
    }

    /// Sends the request upstream; a failure is the problem to answer.
    async fn send(
        &self,
        method: http::Method,
        url: url::Url,
        headers: http::HeaderMap,
        body: Bytes,
    ) -> Result<reqwest::Response, Problem> {
        let target = &self.target;
        let sent = target
            .client
            .request(method, url)
            .headers(headers)
            .body(body)
            .send()
            .await;
        sent.map_err(|e| {
            // The upstream's URL (and query) stays out of answers and records.
            let e = e.without_url();
            tracing::warn!(connection = %target.name, error = %error_chain(&e), "upstream request failed");
            if e.is_timeout() {
                refusals::upstream_timeout(&target.name)
            } else {
                refusals::upstream_unreachable(&target.name, &error_chain(&e))
            }
        })
    }

    fn into_finisher(
        self,
        started: Timestamp,
        clock: std::time::Instant,
        decision: DecisionRecord,
        exempt_group: Option<String>,
    ) -> Finisher {
        Finisher {
            session: self.session,
            seq: self.seq,
            text: self.text,
            params: self.params,
            started,
            clock,
            decision,
            exempt_group,
            exchange: self.exchange,
            record_engine: self.record_engine,
            record_body_limit: self.target.record_body_limit,
            body_prefix: Vec::new(),
        }
    }

    /// Records a refusal after the decision was logged, and answers it.
    async fn refused(
        self,
        problem: &Problem,
        record: DecisionRecord,
        started: Timestamp,
        clock: std::time::Instant,
    ) -> Response<Body> {
        let answer = self.render(problem);
        let outcome = ActionOutcome::Error {
            code: problem.code(),
            message: mask_for_record(&self.record_engine, &problem.detail),
        };
        let mut me = self;
        me.exchange.status = answer.status().as_u16();
        me.finish(started, clock, outcome, record, None).await;
        answer
    }

    async fn finish(
        self,
        started: Timestamp,
        clock: std::time::Instant,
        outcome: ActionOutcome,
        decision: DecisionRecord,
        masking: Option<MaskingSummary>,
    ) {
        let f = self.into_finisher(started, clock, decision, None);
        f.record(outcome, masking).await;
    }
}
