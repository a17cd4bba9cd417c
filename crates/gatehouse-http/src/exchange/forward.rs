//! A decided request sent upstream and its answer streamed back: decoded,
//! scrubbed of the gateway's credential, masked by content type, recorded
//! at the end; an upgrade (Kubernetes exec, attach, port-forward) goes to
//! `upgraded.rs`.

use super::Exchange;
use crate::answer::{recorded_headers, stream_body, ChannelBody, ListFilter};
use crate::gate::RequestFacts;
use crate::refusals::{self, Body};
use crate::response::{BodyKind, BodyPipeline};
use crate::{upstream, Dialect};
use bytes::Bytes;
use gatehouse_core::{ActionOutcome, DecisionRecord, Timestamp};
use http::{header, Response, StatusCode};
use http_body_util::BodyExt;
use std::sync::Arc;
use tokio::sync::mpsc;

impl Exchange<'_> {
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn forward(
        self,
        parts: http::request::Parts,
        forwarded: http::HeaderMap,
        facts: RequestFacts,
        body: Bytes,
        record: DecisionRecord,
        started: Timestamp,
        clock: std::time::Instant,
    ) -> Result<Response<Body>, Response<Body>> {
        let s = &self.gw.settings;
        let target = self.target.clone();
        let exempt_group = self.exempt_group.clone();
        let masking = target.masking.as_ref().filter(|_| exempt_group.is_none());
        let secrets = self.secrets.clone();
        let mut url = target.url.clone();
        let base = url.path().trim_end_matches('/').to_string();
        if target.dialect != Dialect::Mcp || base.is_empty() {
            url.set_path(&format!("{base}{}", facts.path.forward()));
        }
        // An MCP endpoint is the configured URL itself.
        url.set_query(facts.raw_query.as_deref());
        let mut headers = upstream::request_headers(&forwarded, &target, self.caller.peer.ip());
        if target.impersonate {
            if let Err(why) =
                crate::kube::masking::impersonate(&mut headers, self.session.identity())
            {
                let problem = refusals::bad_message(&why);
                return Err(self.refused(&problem, record, started, clock).await);
            }
        }
        if target.dialect == Dialect::Mcp {
            // MCP servers refuse a browser's Origin (DNS rebinding guard);
            // the gateway is not a browser.
            headers.remove(header::ORIGIN);
        }
        if let Some(upgrade_to) = self.upgrade_to {
            return self
                .forward_upgraded(
                    parts.method.clone(),
                    url,
                    headers,
                    body,
                    upgrade_to,
                    &facts,
                    record,
                    started,
                    clock,
                )
                .await;
        }
        let resp = match self.send(parts.method.clone(), url, headers, body).await {
            Ok(r) => r,
            Err(problem) => return Err(self.refused(&problem, record, started, clock).await),
        };
        let status = resp.status();
        if target.dialect == Dialect::Mcp {
            if let Some(sid) = resp
                .headers()
                .get("mcp-session-id")
                .and_then(|v| v.to_str().ok())
            {
                self.gw
                    .mcp_session_opened(sid, &self.session.identity().subject);
            }
        }
        let content_type = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        // Every coding of every Content-Encoding header, in order.
        let codings: Vec<String> = resp
            .headers()
            .get_all(header::CONTENT_ENCODING)
            .iter()
            .map(|v| v.to_str().unwrap_or("(not text)"))
            .flat_map(|v| v.split(','))
            .map(|c| c.trim().to_string())
            .collect();
        let no_body = parts.method == http::Method::HEAD
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
            || resp.content_length() == Some(0);
        let about_secrets = facts.kube.as_ref().is_some_and(|k| k.names_secrets());
        let engine = if no_body {
            None
        } else {
            masking.map(|m| m.engine_for(about_secrets).clone())
        };
        // A watch is a stream of JSON documents, one per line.
        let body_kind = match BodyKind::of(&content_type) {
            Some(BodyKind::Json) if facts.kube.as_ref().is_some_and(|k| k.verb == "watch") => {
                Some(BodyKind::JsonLines)
            }
            other => other,
        };
        let pipeline = BodyPipeline::new(
            if no_body { &[] } else { &codings },
            body_kind,
            engine.clone(),
            if no_body {
                Arc::from(Vec::new())
            } else {
                secrets.clone()
            },
            s.max_masked_value,
        );
        // A partial answer cannot be masked by structure: the gateway asked
        // for whole bodies (Range is not forwarded under masking).
        let pipeline = match pipeline {
            Ok(_) if engine.is_some() && status == StatusCode::PARTIAL_CONTENT => {
                Err("the upstream answered part of the body (206)".to_string())
            }
            other => other,
        };
        let pipeline = match pipeline {
            Ok(p) => p,
            // Masked, or carrying the gateway's credential to scrub: withheld.
            Err(reason) if engine.is_some() || !secrets.is_empty() => {
                let problem = refusals::unmaskable(&target.name, &reason);
                return Err(self.refused(&problem, record, started, clock).await);
            }
            // Not masked and not decodable: passed as the upstream sent it.
            Err(_) => BodyPipeline::new(&[], None, None, Arc::from(Vec::new()), 0)
                .map_err(|_| self.render(&refusals::evidence_unavailable()))?,
        };
        let mut out = Response::new(());
        *out.status_mut() = status;
        *out.headers_mut() =
            upstream::response_headers(resp.headers(), &secrets, pipeline.rewrites());
        if let Some(engine) = &engine {
            // Header values can carry data too (an email in a custom header).
            crate::answer::mask_header_values(engine, out.headers_mut());
        }
        let (tx, rx) = mpsc::channel(8);
        let outcome = if status.as_u16() >= 400 {
            ActionOutcome::Error {
                code: status.as_u16().to_string(),
                message: status.canonical_reason().unwrap_or("").to_string(),
            }
        } else {
            ActionOutcome::Ok {
                summary: format!(
                    "{} {}",
                    status.as_u16(),
                    status.canonical_reason().unwrap_or("")
                )
                .trim_end()
                .to_string(),
                count: None,
            }
        };
        let tools = facts
            .mcp
            .as_ref()
            .filter(|c| c.lists())
            .map(|_| ListFilter {
                policy: s.policy.clone(),
                identity: self.session.identity().clone(),
                connection: target.name.clone(),
                client_ip: self.caller.peer.ip(),
                event_stream: BodyKind::of(&content_type) == Some(BodyKind::EventStream),
                // A listing is small; it is held whole to be filtered.
                limit: s.max_masked_value.min(8 << 20),
            });
        if tools.is_some() {
            // The list is filtered as it reads, so it must come unencoded.
            if codings
                .iter()
                .any(|c| !c.is_empty() && !c.eq_ignore_ascii_case("identity"))
            {
                let problem = refusals::unmaskable(&target.name, "a listing came encoded");
                return Err(self.refused(&problem, record, started, clock).await);
            }
            // The filtered answer is shorter than the upstream's.
            out.headers_mut().remove(header::CONTENT_LENGTH);
        }
        let mut finisher = self.into_finisher(started, clock, record, exempt_group);
        finisher.exchange.status = status.as_u16();
        finisher.exchange.response_headers =
            recorded_headers(&finisher.record_engine, out.headers());
        tokio::spawn(stream_body(resp, pipeline, tx, finisher, outcome, tools));
        let (head, ()) = out.into_parts();
        Ok(Response::from_parts(head, ChannelBody { rx }.boxed()))
    }
}
