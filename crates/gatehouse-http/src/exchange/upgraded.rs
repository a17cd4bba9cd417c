//! A decided exec, attach or port-forward: the upgrade asked of the API
//! server with the gateway's credential, the 101 passed back to kubectl,
//! then both upgraded connections relayed and recorded
//! (`kube/stream.rs`); the recording is kept in the recordings folder and
//! named by its SHA-256 in the action's result event.

use super::Exchange;
use crate::answer::error_chain;
use crate::kube::stream::{
    relay, Header, PortCheck, RecordingFile, RelaySettings, Wire, WS_CHANNEL_PROTOCOLS,
};
use crate::refusals::{self, Body};
use bytes::Bytes;
use gatehouse_core::{ActionOutcome, DecisionRecord, StreamRecord, Timestamp};
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::sync::Arc;

/// Upgrade protocols the gateway relays.
const UPGRADES: &[&str] = &["websocket", "SPDY/3.1"];

/// Headers of the API server's 101 that kubectl needs.
const SWITCH_HEADERS: &[&str] = &[
    "sec-websocket-accept",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
    "x-stream-protocol-version",
];

/// Whether `value` (an `Upgrade` header) is one the gateway relays.
pub(crate) fn relayed_upgrade(value: &str) -> Option<&'static str> {
    UPGRADES
        .iter()
        .find(|u| u.eq_ignore_ascii_case(value.trim()))
        .copied()
}

impl Exchange<'_> {
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn forward_upgraded(
        mut self,
        method: http::Method,
        url: url::Url,
        mut headers: HeaderMap,
        body: Bytes,
        upgrade_to: &'static str,
        facts: &crate::gate::RequestFacts,
        record: DecisionRecord,
        started: Timestamp,
        clock: std::time::Instant,
    ) -> Result<Response<Body>, Response<Body>> {
        let target = self.target.clone();
        headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static(upgrade_to));
        if upgrade_to == "websocket" {
            // Only the subprotocols the gateway can read to record are
            // offered (a caller's credential in one goes no further).
            let offered: Vec<String> = headers
                .get_all(header::SEC_WEBSOCKET_PROTOCOL)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(|p| p.trim().to_string())
                .filter(|p| WS_CHANNEL_PROTOCOLS.contains(&p.as_str()))
                .collect();
            headers.remove(header::SEC_WEBSOCKET_PROTOCOL);
            match HeaderValue::from_str(&offered.join(", ")) {
                Ok(v) if !offered.is_empty() => {
                    headers.insert(header::SEC_WEBSOCKET_PROTOCOL, v);
                }
                _ => {
                    let problem = refusals::upgrade_not_relayed(&format!(
                        "none of the WebSocket subprotocols offered is one the gateway can record ({})",
                        WS_CHANNEL_PROTOCOLS.join(", ")
                    ));
                    return Err(self.refused(&problem, record, started, clock).await);
                }
            }
        }
        // An exec or attach is recorded from its first byte: its file is
        // made before anything goes to the API server.
        let port_forward = self.kube.as_ref().is_some_and(|k| k.verb == "portforward");
        let name = format!("{}-{}.cast", self.session.id(), self.seq);
        let file = if port_forward {
            None
        } else {
            match RecordingFile::create(&self.gw.settings.recordings, &name).await {
                Ok(f) => Some(f),
                Err(e) => {
                    tracing::error!(error = %e, "could not start an exec recording; refusing it");
                    let problem = refusals::recording_unavailable();
                    return Err(self.refused(&problem, record, started, clock).await);
                }
            }
        };
        let resp = match self.send(method, url, headers, body).await {
            Ok(r) => r,
            Err(problem) => return Err(self.refused(&problem, record, started, clock).await),
        };
        let status = resp.status();
        if status != StatusCode::SWITCHING_PROTOCOLS {
            // The API server refused the upgrade (kubectl may then try SPDY):
            // its answer goes back as it is, scrubbed of the credential.
            return Ok(self.not_switched(resp, record, started, clock).await);
        }
        let theirs = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        let upgrade = theirs("upgrade");
        let subprotocol = match theirs("sec-websocket-protocol") {
            p if p.is_empty() => theirs("x-stream-protocol-version"),
            p => p,
        };
        let Some(wire) = Wire::of(&upgrade, &subprotocol) else {
            let problem = refusals::upstream_protocol(&target.name, &upgrade);
            return Err(self.refused(&problem, record, started, clock).await);
        };
        let mut out = Response::new(crate::refusals::full(Bytes::new()));
        *out.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        out.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        if let Ok(v) = HeaderValue::from_str(&upgrade) {
            out.headers_mut().insert(header::UPGRADE, v);
        }
        for name in SWITCH_HEADERS {
            for v in resp.headers().get_all(*name) {
                out.headers_mut().append(*name, v.clone());
            }
        }
        let upstream = match resp.upgrade().await {
            Ok(u) => u,
            Err(e) => {
                let problem = refusals::upstream_unreachable(&target.name, &error_chain(&e));
                return Err(self.refused(&problem, record, started, clock).await);
            }
        };
        let Some(on_upgrade) = self.on_upgrade.take() else {
            // Only upgrade requests come here; the caller's side is always there.
            let problem = refusals::bad_message("the request asked for no upgrade");
            return Err(self.refused(&problem, record, started, clock).await);
        };
        let recording_limit = target.recording_limit;
        let port_check = port_forward.then(|| self.port_check(facts));
        let kube = self.kube.clone().unwrap_or_default();
        let command = crate::answer::mask_for_record(
            &self.record_engine,
            &gatehouse_policy::command_line(&kube.command),
        );
        let stdin = kube.stdin;
        let engine = self.record_engine.clone();
        let exempt = self.exempt_group.clone();
        let mut finisher = self.into_finisher(started, clock, record, exempt);
        finisher.exchange.status = StatusCode::SWITCHING_PROTOCOLS.as_u16();
        tokio::spawn(async move {
            let client = match on_upgrade.await {
                Ok(c) => c,
                Err(e) => {
                    let outcome = ActionOutcome::Error {
                        code: "101".into(),
                        message: format!("the caller's side of the upgrade failed: {e}"),
                    };
                    finisher.record(outcome, None).await;
                    return;
                }
            };
            let header = Header {
                title: finisher.text.clone(),
                command,
                started_unix: started.unix_millis() / 1000,
            };
            let settings = RelaySettings {
                wire,
                port_forward,
                stdin,
                port_check,
                engine,
                limit: recording_limit,
                header,
                sink: file.as_ref().map(|f| f.sink.clone()),
            };
            let (relayed, cast) = relay(TokioIo::new(client), upstream, settings).await;
            finisher.count(relayed.bytes_in, relayed.bytes_out);
            let mut stream = StreamRecord {
                protocol: subprotocol.clone(),
                stdin_bytes: relayed.stdio_bytes[0],
                stdout_bytes: relayed.stdio_bytes[1],
                stderr_bytes: relayed.stdio_bytes[2],
                exit_code: relayed.exit_code,
                forwarded: relayed.forwarded.clone(),
                ..StreamRecord::default()
            };
            let mut outcome = match (&relayed.cut, relayed.exit_code, &relayed.status_message) {
                (Some(why), _, _) => ActionOutcome::Error {
                    code: "cut".into(),
                    message: why.clone(),
                },
                (None, Some(0), _) | (None, None, None) => ActionOutcome::Ok {
                    summary: match relayed.exit_code {
                        Some(c) => format!("exit {c}"),
                        None => "ended".into(),
                    },
                    count: None,
                },
                (None, Some(code), _) => ActionOutcome::Error {
                    code: "exit".into(),
                    message: format!("the command exited with {code}"),
                },
                (None, None, Some(m)) => ActionOutcome::Error {
                    code: "status".into(),
                    message: m.clone(),
                },
            };
            if let (Some(cast), Some(file)) = (cast, file) {
                match file.keep(cast, relayed.exit_code).await {
                    Ok(w) => stream.kept(name, w.sha256, w.bytes),
                    Err(e) => {
                        tracing::error!(error = %e, "could not keep an exec recording");
                        outcome = ActionOutcome::Error {
                            code: "recording".into(),
                            message: format!("gatehouse could not keep the recording: {e}"),
                        };
                    }
                }
            }
            finisher.exchange.stream = Some(stream);
            finisher.record(outcome, None).await;
        });
        Ok(out)
    }

    /// Decides a port-forwarded connection's port as it opens: the
    /// request decided again with that port alone, as the policy is now
    /// (audit mode lets it through). Approval cannot be waited for inside
    /// a stream: a port that needs it is refused, naming why.
    fn port_check(&self, facts: &crate::gate::RequestFacts) -> PortCheck {
        let policy = self.gw.settings.policy.clone();
        let identity = self.session.identity().clone();
        let connection = self.target.name.clone();
        let client_ip = self.caller.peer.ip();
        let k = facts.kube.clone().unwrap_or_default();
        let path = facts.path.decoded().to_string();
        Arc::new(move |port: u16| {
            if policy.mode() == gatehouse_policy::PolicyMode::Audit {
                return Ok(());
            }
            let (engine, _) = policy.current();
            let d = engine.decide_kube(&gatehouse_policy::KubeRequestFacts {
                ports: &[port],
                ..k.facts(&identity, &connection, client_ip, false, &path)
            });
            match d {
                gatehouse_policy::Decision::Allow { .. } => Ok(()),
                gatehouse_policy::Decision::Deny { reason, .. }
                | gatehouse_policy::Decision::Review { reason, .. } => {
                    Err(format!("port {port} refused: {reason}"))
                }
            }
        })
    }

    /// The API server answered the upgrade without switching: its answer
    /// (a Status, usually) goes back whole, scrubbed of the credential.
    async fn not_switched(
        self,
        resp: reqwest::Response,
        record: DecisionRecord,
        started: Timestamp,
        clock: std::time::Instant,
    ) -> Response<Body> {
        let status = resp.status();
        let headers = crate::upstream::response_headers(resp.headers(), &self.secrets, true);
        // A refusal is small; more than 64 KiB of it is not read.
        let mut body = Vec::new();
        let mut resp = resp;
        while let Ok(Some(chunk)) = resp.chunk().await {
            let room = (64 * 1024usize).saturating_sub(body.len());
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if room <= chunk.len() {
                break;
            }
        }
        let mut text = String::from_utf8_lossy(&body).into_owned();
        for s in self.secrets.iter() {
            text = text.replace(s.as_str(), "[masked:upstream-credential]");
        }
        let text = crate::answer::mask_for_record(&self.record_engine, &text);
        let outcome = ActionOutcome::Error {
            code: status.as_u16().to_string(),
            message: crate::answer::cut(&text, 1024),
        };
        let mut me = self;
        me.exchange.status = status.as_u16();
        let answer = {
            let mut r = Response::new(crate::refusals::full(Bytes::from(text)));
            *r.status_mut() = status;
            *r.headers_mut() = headers;
            r
        };
        let exempt = me.exempt_group.clone();
        let f = me.into_finisher(started, clock, record, exempt);
        f.record(outcome, None).await;
        answer
    }
}
