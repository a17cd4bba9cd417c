//! The answer's way back: the upstream body read, masked and sent on in a
//! bounded channel (an MCP listing of tools, resources or prompts held and
//! filtered first),
//! and the request's record once the body has passed.

use crate::gate;
use crate::response::BodyPipeline;
use bytes::Bytes;
use gatehouse_core::{
    ActionOutcome, ActionRecord, DecisionRecord, HttpExchange, MaskingSummary, Timestamp,
};
use gatehouse_mask::{MaskingEngine, Scratch};
use hyper::body::Frame;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::mpsc;

/// What the record of a forwarded request needs once its body has passed.
pub(crate) struct Finisher {
    pub(crate) session: gatehouse_session::Session,
    pub(crate) seq: u64,
    pub(crate) text: String,
    pub(crate) params: Vec<Option<String>>,
    pub(crate) started: Timestamp,
    pub(crate) clock: std::time::Instant,
    pub(crate) decision: DecisionRecord,
    pub(crate) exempt_group: Option<String>,
    pub(crate) exchange: HttpExchange,
    pub(crate) record_engine: Arc<MaskingEngine>,
    pub(crate) record_body_limit: usize,
    /// The first bytes of the response body as sent.
    pub(crate) body_prefix: Vec<u8>,
}

impl Finisher {
    /// Counts the bytes of an upgraded stream, both ways.
    pub(crate) fn count(&mut self, from_caller: u64, to_caller: u64) {
        self.session.counters().read(from_caller as usize);
        self.session.counters().written(to_caller as usize);
        self.exchange.response_bytes += to_caller;
    }

    /// Counts bytes sent to the caller and keeps the first of them.
    fn sent(&mut self, bytes: &[u8]) {
        self.session.counters().written(bytes.len());
        self.exchange.response_bytes += bytes.len() as u64;
        // A little more than is kept, so a value cut at the limit is still
        // whole when the detectors look at it.
        let room = (self.record_body_limit + RECORD_MARGIN).saturating_sub(self.body_prefix.len());
        self.body_prefix
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    pub(crate) async fn record(mut self, outcome: ActionOutcome, masking: Option<MaskingSummary>) {
        // An exempt caller got clear values; the record keeps no body rather
        // than one only the detectors masked.
        if !self.body_prefix.is_empty() && self.exempt_group.is_none() {
            let masked = mask_for_record(
                &self.record_engine,
                &String::from_utf8_lossy(&self.body_prefix),
            );
            self.exchange.response_body = Some(cut(&masked, self.record_body_limit));
        }
        let record = ActionRecord {
            session_id: self.session.id(),
            seq: self.seq,
            protocol: self.session.protocol().as_str().to_string(),
            text: self.text,
            params: self.params,
            started_at: self.started,
            duration_us: self.clock.elapsed().as_micros() as u64,
            outcome,
            decision: Some(self.decision),
            masking,
            exchange: Some(self.exchange),
        };
        if self.session.finished(record).await.is_err() {
            tracing::error!("session recorder stopped; a request is not recorded");
        }
    }
}

/// An MCP listing (`tools/list`, `resources/list`, `prompts/list`) is held
/// whole (it is small) and shown only with what the caller may use.
pub(crate) struct ListFilter {
    pub(crate) policy: Arc<gatehouse_policy::PolicyHandle>,
    pub(crate) identity: gatehouse_core::Identity,
    pub(crate) connection: String,
    pub(crate) client_ip: std::net::IpAddr,
    pub(crate) event_stream: bool,
    pub(crate) limit: usize,
}

impl ListFilter {
    fn apply(&self, body: &[u8]) -> Result<Vec<u8>, String> {
        let keep = |listed: crate::mcp::Listed, key: &str| {
            gate::may_list(
                &self.policy,
                &self.identity,
                &self.connection,
                self.client_ip,
                listed,
                key,
            )
        };
        crate::mcp::filter_listing(body, self.event_stream, &keep)
    }
}

/// Reads the upstream body, masks it, sends it on; records the request
/// when it ends (completely, cut by an error, or abandoned by the caller).
pub(crate) async fn stream_body(
    mut resp: reqwest::Response,
    mut pipeline: BodyPipeline,
    tx: mpsc::Sender<Result<Frame<Bytes>, std::io::Error>>,
    mut finisher: Finisher,
    ok: ActionOutcome,
    tools: Option<ListFilter>,
) {
    let mut out = Vec::new();
    let mut held = Vec::new();
    let session = finisher.session.clone();
    let outcome = loop {
        out.clear();
        let mut gone = false;
        let step = match (resp.chunk().await, &tools) {
            (Ok(Some(chunk)), Some(f)) if held.len() + chunk.len() <= f.limit => {
                held.extend_from_slice(&chunk);
                Ok(false)
            }
            (Ok(Some(_)), Some(f)) => Err(crate::response::BodyError::LineTooLong(f.limit)),
            (Ok(None), Some(f)) => match f.apply(&held) {
                Ok(filtered) => pipeline
                    .feed(&filtered, &mut out)
                    .and_then(|()| pipeline.finish(&mut out))
                    .map(|()| true),
                Err(e) => Err(crate::response::BodyError::Unfilterable(e)),
            },
            // Nothing to decode, scrub or mask: the upstream's bytes go on as they are.
            (Ok(Some(chunk)), None) if !pipeline.rewrites() => {
                finisher.sent(&chunk);
                if tx.send(Ok(Frame::data(chunk))).await.is_err() {
                    gone = true;
                }
                Ok(false)
            }
            (Ok(Some(chunk)), None) => {
                let slice = pipeline.slice();
                let mut r = Ok(false);
                for piece in chunk.chunks(slice.min(chunk.len()).max(1)) {
                    if let Err(e) = pipeline.feed(piece, &mut out) {
                        r = Err(e);
                        break;
                    }
                    // What a compressed slice inflated to goes out before the next.
                    if out.len() >= 64 * 1024 {
                        finisher.sent(&out);
                        let frame = Frame::data(Bytes::from(std::mem::take(&mut out)));
                        if tx.send(Ok(frame)).await.is_err() {
                            gone = true;
                            break;
                        }
                    }
                }
                r
            }
            (Ok(None), None) => pipeline.finish(&mut out).map(|()| true),
            (Err(e), _) => {
                let e = e.without_url();
                let msg = format!("the upstream's body broke off: {}", error_chain(&e));
                let _ = tx.send(Err(std::io::Error::other(msg.clone()))).await;
                break ActionOutcome::Error {
                    code: "502".into(),
                    message: msg,
                };
            }
        };
        if gone {
            break ActionOutcome::Incomplete;
        }
        match step {
            Ok(done) => {
                if !out.is_empty() {
                    finisher.sent(&out);
                    let frame = Frame::data(Bytes::from(std::mem::take(&mut out)));
                    if tx.send(Ok(frame)).await.is_err() {
                        break ActionOutcome::Incomplete;
                    }
                }
                if done {
                    break ok;
                }
            }
            Err(e) => {
                // Withheld from here on: the caller sees the response cut.
                let msg = format!("gatehouse withheld the rest of the response: {e}");
                tracing::warn!(session = %session.id(), "{msg}");
                let _ = tx.send(Err(std::io::Error::other(msg.clone()))).await;
                break ActionOutcome::Error {
                    code: "502".into(),
                    message: msg,
                };
            }
        }
    };
    let masking = pipeline.summary(finisher.exempt_group.clone());
    finisher.record(outcome, masking).await;
}

/// A response body fed by the streaming task; bounded, so a slow caller
/// slows the upstream read instead of growing memory.
pub(crate) struct ChannelBody {
    pub(crate) rx: mpsc::Receiver<Result<Frame<Bytes>, std::io::Error>>,
}

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        self.rx.poll_recv(cx)
    }
}

pub(crate) use gatehouse_session::recording::mask_for_record;

/// A request line for records: masked as text, and its query's values
/// masked as decoded too (`alice%40example.com` is an address the
/// detectors would not see encoded), the query re-encoded when one was.
pub(crate) fn mask_request_line(engine: &MaskingEngine, line: &str) -> String {
    let masked = mask_for_record(engine, line);
    let Some((head, query)) = masked.split_once('?') else {
        return masked;
    };
    if !query.contains('%') && !query.contains('+') {
        return masked;
    }
    let mut changed = false;
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| {
            let m = mask_for_record(engine, &v);
            changed |= m != v;
            (k.into_owned(), m)
        })
        .collect();
    if !changed {
        return masked;
    }
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in &pairs {
        q.append_pair(k, v);
    }
    format!("{head}?{}", q.finish())
}

/// An error with its causes (reqwest's top level says little).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Headers as a record keeps them: without cookies and credentials, values
/// masked.
pub(crate) fn recorded_headers(
    engine: &MaskingEngine,
    headers: &http::HeaderMap,
) -> Vec<(String, String)> {
    let mut scratch = Scratch::default();
    let mut tally = engine.tally();
    headers
        .iter()
        .filter(|(n, _)| !matches!(n.as_str(), "cookie" | "set-cookie"))
        .map(|(n, v)| {
            let name = n.as_str();
            // Credentials and capabilities (an API key, a session id) are
            // named but not kept.
            let value = if ["auth", "key", "token", "secret", "session", "password"]
                .iter()
                .any(|w| name.contains(w))
            {
                "[withheld]".to_string()
            } else {
                let text = String::from_utf8_lossy(v.as_bytes());
                engine
                    .mask_str(&text, &mut scratch, &mut tally)
                    .into_owned()
            };
            (name.to_string(), value)
        })
        .collect()
}

/// Bytes past the kept size that are read too, so a value cut there is
/// masked whole before the cut.
const RECORD_MARGIN: usize = 256;

/// At most `max` bytes of `s`, cut at a character boundary.
pub(crate) fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &s[..end], s.len())
}

/// Headers whose values are the protocol's own (a redirect must still
/// lead somewhere): not masked.
const STRUCTURAL_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "content-encoding",
    "date",
    "etag",
    "last-modified",
    "cache-control",
    "expires",
    "vary",
    "allow",
    "via",
    "server",
    "location",
    "content-location",
    "retry-after",
    "accept-ranges",
];

/// Masks the values of headers sent to a caller masking applies to.
pub(crate) fn mask_header_values(engine: &MaskingEngine, headers: &mut http::HeaderMap) {
    let mut scratch = Scratch::default();
    let mut tally = engine.tally();
    for (_, v) in headers
        .iter_mut()
        .filter(|(n, _)| !STRUCTURAL_HEADERS.contains(&n.as_str()))
    {
        let text = String::from_utf8_lossy(v.as_bytes()).into_owned();
        let masked = engine.mask_str(&text, &mut scratch, &mut tally);
        if masked != text {
            if let Ok(nv) = http::HeaderValue::from_str(&masked) {
                *v = nv;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_is_masked_as_decoded() {
        let engine = crate::email_engine();
        let line = "POST /pods/web-1/exec?command=echo&command=alice%40example.com&tty=1";
        let masked = mask_request_line(&engine, line);
        assert!(!masked.contains("alice"), "{masked}");
        assert!(
            masked.contains("command=echo&command=%5Bmasked%3Aemail%5D&tty=1"),
            "{masked}"
        );
        // Nothing to mask: the line as it was.
        let plain = "GET /api/v1/pods?limit=500&labelSelector=app%3Dweb";
        assert_eq!(mask_request_line(&engine, plain), plain);
    }
}
