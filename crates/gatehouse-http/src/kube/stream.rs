//! exec, attach and port-forward: the upgraded connection relayed byte for
//! byte between kubectl and the API server, read on the way to record it.
//!
//! Both upgrade protocols kubectl speaks are read: WebSocket with
//! Kubernetes' channel protocols (`v5.channel.k8s.io`, `v4…`: each message
//! starts with its channel byte: 0 stdin, 1 stdout, 2 stderr, 3 status,
//! 4 resize) and SPDY/3.1 (one stream per channel, named by its
//! `streamtype` header), and for port-forward SPDY tunnelled in WebSocket.
//! exec and attach become an asciicast recording (masked by the
//! connection's detectors) with the exit status; port-forward records its
//! connections and byte counts, not their content. A stream the gateway
//! cannot read is cut: what is not recorded is not relayed.

mod cast;
mod spdy;
mod websocket;

use cast::{Cast, Stdio};
use gatehouse_mask::MaskingEngine;
use spdy::{SpdyEvent, SpdyFrames};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use websocket::{WsEvent, WsFrames};

/// The protocol the API server chose (from its 101 answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wire {
    /// WebSocket with a channel protocol; `v5`: channel 255 closes a stream.
    WebSocket { v5: bool },
    /// SPDY/3.1.
    Spdy,
    /// SPDY/3.1 inside WebSocket binary messages (port-forward).
    SpdyInWebSocket,
}

impl Wire {
    /// The wire from the 101 answer's `Upgrade` and subprotocol headers.
    pub(crate) fn of(upgrade: &str, subprotocol: &str) -> Option<Self> {
        if upgrade.eq_ignore_ascii_case("websocket") {
            if subprotocol.starts_with("SPDY/3.1+") {
                Some(Wire::SpdyInWebSocket)
            } else {
                Some(Wire::WebSocket {
                    v5: subprotocol.starts_with("v5."),
                })
            }
        } else if upgrade.eq_ignore_ascii_case("SPDY/3.1") {
            Some(Wire::Spdy)
        } else {
            None
        }
    }
}

/// What was relayed, for the record.
#[derive(Debug, Default)]
pub(crate) struct Relayed {
    /// Bytes from the caller and to it.
    pub(crate) bytes_in: u64,
    pub(crate) bytes_out: u64,
    /// stdin, stdout, stderr bytes (exec/attach).
    pub(crate) stdio_bytes: [u64; 3],
    /// exec: the command's exit code, when the API server reported one.
    pub(crate) exit_code: Option<i64>,
    /// The status the API server reported when it was not an exit code.
    pub(crate) status_message: Option<String>,
    /// port-forward: connections opened, by port.
    pub(crate) forwarded: Vec<(String, u64)>,
    /// Why the relay was cut, if it was.
    pub(crate) cut: Option<String>,
    /// The recording dropped events at its limit.
    pub(crate) truncated: bool,
}

/// What one side's bytes mean, read as they pass.
struct Reader {
    ws: Option<WsFrames>,
    spdy: Option<SpdyFrames>,
    /// WebSocket: the channel of the message being read.
    channel: Option<u8>,
}

/// The recording both directions feed.
struct Recording {
    wire: Wire,
    port_forward: bool,
    cast: Cast,
    status: Vec<u8>,
    resize: Vec<u8>,
    /// SPDY: stream id → its type ("stdout", "data"…), and port.
    streams: HashMap<u32, (String, String)>,
    forwarded: HashMap<String, u64>,
}

impl Recording {
    fn channel_data(&mut self, channel: u8, bytes: &[u8]) {
        match channel {
            0 => self.cast.data(Stdio::Stdin, bytes),
            1 => self.cast.data(Stdio::Stdout, bytes),
            2 => self.cast.data(Stdio::Stderr, bytes),
            3 => keep(&mut self.status, bytes),
            4 => {
                keep(&mut self.resize, bytes);
                self.resizes();
            }
            _ => {}
        }
    }

    fn stream_data(&mut self, stream: u32, bytes: &[u8]) {
        let Some((kind, _)) = self.streams.get(&stream) else {
            return;
        };
        let channel = match kind.as_str() {
            "stdin" => 0,
            "stdout" => 1,
            "stderr" => 2,
            "error" if !self.port_forward => 3,
            "resize" => 4,
            _ => return,
        };
        self.channel_data(channel, bytes);
    }

    /// Resize messages: JSON objects (`{"Width":…,"Height":…}`), one per
    /// message or per line.
    fn resizes(&mut self) {
        let mut stream =
            serde_json::Deserializer::from_slice(&self.resize).into_iter::<serde_json::Value>();
        let mut used = 0;
        while let Some(Ok(size)) = stream.next() {
            used = stream.byte_offset();
            let dim = |k: &str| size[k].as_u64().and_then(|n| u32::try_from(n).ok());
            if let (Some(w), Some(h)) = (dim("Width"), dim("Height")) {
                self.cast.resize(w, h);
            }
        }
        self.resize.drain(..used);
    }
}

/// Appends at most 64 KiB of a small side stream (status, resize).
fn keep(buf: &mut Vec<u8>, bytes: &[u8]) {
    let room = (64 * 1024usize).saturating_sub(buf.len());
    buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
}

impl Reader {
    fn new(wire: Wire, from_client: bool) -> Self {
        let ws = matches!(wire, Wire::WebSocket { .. } | Wire::SpdyInWebSocket)
            .then(|| WsFrames::new(from_client));
        let spdy = matches!(wire, Wire::Spdy | Wire::SpdyInWebSocket).then(SpdyFrames::new);
        Self {
            ws,
            spdy,
            channel: None,
        }
    }

    /// Reads one chunk into the recording.
    fn read(&mut self, bytes: &[u8], rec: &mut Recording) -> Result<(), String> {
        let Reader { ws, spdy, channel } = self;
        match (ws, spdy) {
            (Some(ws), None) => {
                let v5 = matches!(rec.wire, Wire::WebSocket { v5: true });
                let mut on = |e: WsEvent<'_>| {
                    if let WsEvent::Data { first, bytes } = e {
                        let mut bytes = bytes;
                        if first {
                            *channel = bytes.first().copied();
                            bytes = &bytes[1..];
                        }
                        match *channel {
                            // v5: a stream's close, not data.
                            Some(255) if v5 => {}
                            Some(c) => rec.channel_data(c, bytes),
                            None => {}
                        }
                    }
                };
                ws.feed(bytes, &mut on).map_err(|e| e.to_string())
            }
            (Some(ws), Some(spdy)) => {
                let mut failed = None;
                let mut on = |e: WsEvent<'_>| {
                    if let (WsEvent::Data { bytes, .. }, None) = (e, &failed) {
                        if let Err(e) = spdy.feed(bytes, &mut |s| spdy_event(s, rec)) {
                            failed = Some(e.to_string());
                        }
                    }
                };
                ws.feed(bytes, &mut on).map_err(|e| e.to_string())?;
                failed.map_or(Ok(()), Err)
            }
            (None, Some(spdy)) => spdy
                .feed(bytes, &mut |s| spdy_event(s, rec))
                .map_err(|e| e.to_string()),
            (None, None) => Ok(()),
        }
    }
}

fn spdy_event(e: SpdyEvent<'_>, rec: &mut Recording) {
    match e {
        SpdyEvent::Open {
            stream, headers, ..
        } => {
            let find = |name: &str| {
                headers
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            };
            let kind = find("streamtype");
            let port = find("port");
            if rec.port_forward && kind == "data" {
                *rec.forwarded.entry(port.clone()).or_default() += 1;
            }
            rec.streams.insert(stream, (kind, port));
        }
        SpdyEvent::Data { stream, bytes } => rec.stream_data(stream, bytes),
        SpdyEvent::Fin { .. } | SpdyEvent::Reset { .. } => {}
    }
}

/// Settings of one relay.
pub(crate) struct RelaySettings {
    pub(crate) wire: Wire,
    pub(crate) port_forward: bool,
    /// Masks what the recording keeps.
    pub(crate) engine: Arc<MaskingEngine>,
    /// The most bytes of events a recording keeps.
    pub(crate) limit: usize,
}

/// Relays until both sides are done (or one fails, or a side's bytes
/// cannot be read: then both are closed).
pub(crate) async fn relay<C, U>(client: C, upstream: U, s: RelaySettings) -> (Relayed, Option<Cast>)
where
    C: AsyncRead + AsyncWrite + Unpin + Send,
    U: AsyncRead + AsyncWrite + Unpin + Send,
{
    let rec = Mutex::new(Recording {
        wire: s.wire,
        port_forward: s.port_forward,
        cast: Cast::new(s.engine, s.limit),
        status: Vec::new(),
        resize: Vec::new(),
        streams: HashMap::new(),
        forwarded: HashMap::new(),
    });
    let (mut cr, mut cw) = tokio::io::split(client);
    let (mut ur, mut uw) = tokio::io::split(upstream);
    let mut from_client = Reader::new(s.wire, true);
    let mut from_server = Reader::new(s.wire, false);
    let up = pump(&mut cr, &mut uw, &mut from_client, &rec);
    let down = pump(&mut ur, &mut cw, &mut from_server, &rec);
    let (up, down) = tokio::join!(up, down);
    let mut out = Relayed::default();
    let cut = |r: &Result<u64, String>| r.as_ref().err().cloned();
    out.cut = cut(&up).or_else(|| cut(&down));
    out.bytes_in = *up.as_ref().unwrap_or(&0);
    out.bytes_out = *down.as_ref().unwrap_or(&0);
    // The lock is only poisoned if a reader panicked; the recording is
    // still whatever it holds.
    let rec = rec.into_inner().unwrap_or_else(|p| p.into_inner());
    let mut forwarded: Vec<(String, u64)> = rec.forwarded.into_iter().collect();
    forwarded.sort();
    out.forwarded = forwarded;
    if !rec.status.is_empty() {
        let (code, message) = exit_status(&rec.status);
        out.exit_code = code;
        out.status_message = message;
    }
    out.stdio_bytes = rec.cast.bytes;
    out.truncated = rec.cast.truncated();
    (out, (!s.port_forward).then_some(rec.cast))
}

/// Copies one direction, reading it into the recording first. `Err`: the
/// bytes could not be read (both sides are then closed by the caller's
/// join ending) or a side failed.
async fn pump<R, W>(
    from: &mut R,
    to: &mut W,
    reader: &mut Reader,
    rec: &Mutex<Recording>,
) -> Result<u64, String>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 16 * 1024];
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) => {
                let _ = to.shutdown().await;
                return Ok(total);
            }
            Ok(n) => n,
            Err(e) => {
                let _ = to.shutdown().await;
                return Err(format!("the connection broke: {e}"));
            }
        };
        // The lock is held for the read alone, never across an await.
        let unreadable = {
            let mut rec = rec.lock().unwrap_or_else(|p| p.into_inner());
            let r = reader.read(&buf[..n], &mut rec);
            if let Err(why) = &r {
                rec.cast.marker(&format!("gatehouse cut the stream: {why}"));
            }
            r.err()
        };
        if let Some(why) = unreadable {
            let _ = to.shutdown().await;
            return Err(format!("the stream could not be read to record it: {why}"));
        }
        if let Err(e) = to.write_all(&buf[..n]).await {
            return Err(format!("the connection broke: {e}"));
        }
        total += n as u64;
    }
}

/// The exit code (or message) in a remotecommand status: `Success`, or a
/// `Failure` with reason `NonZeroExitCode` and the code as a cause.
fn exit_status(status: &[u8]) -> (Option<i64>, Option<String>) {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(status) else {
        return (None, Some(String::from_utf8_lossy(status).into_owned()));
    };
    match v["status"].as_str() {
        Some("Success") => (Some(0), None),
        _ => {
            let code = v["details"]["causes"]
                .as_array()
                .and_then(|c| c.iter().find(|c| c["reason"] == "ExitCode"))
                .and_then(|c| c["message"].as_str())
                .and_then(|m| m.parse().ok());
            let message = v["message"].as_str().map(str::to_string);
            (code, if code.is_some() { None } else { message })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_statuses_are_read() {
        assert_eq!(
            exit_status(br#"{"metadata":{},"status":"Success"}"#),
            (Some(0), None)
        );
        let failure = br#"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}"#;
        assert_eq!(exit_status(failure), (Some(3), None));
        let other = br#"{"status":"Failure","message":"container not found"}"#;
        assert_eq!(
            exit_status(other),
            (None, Some("container not found".into()))
        );
    }

    #[test]
    fn wires_from_the_answer() {
        assert_eq!(
            Wire::of("websocket", "v5.channel.k8s.io"),
            Some(Wire::WebSocket { v5: true })
        );
        assert_eq!(
            Wire::of("WebSocket", "v4.channel.k8s.io"),
            Some(Wire::WebSocket { v5: false })
        );
        assert_eq!(
            Wire::of("websocket", "SPDY/3.1+portforward.k8s.io"),
            Some(Wire::SpdyInWebSocket)
        );
        assert_eq!(Wire::of("SPDY/3.1", "v4.channel.k8s.io"), Some(Wire::Spdy));
        assert_eq!(Wire::of("h2c", ""), None);
    }
}
