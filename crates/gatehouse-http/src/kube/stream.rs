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

#[cfg(test)]
mod fixtures;
mod spdy;
mod websocket;

use gatehouse_mask::MaskingEngine;
use gatehouse_session::recording::{Cast, Stdio};
pub(crate) use gatehouse_session::recording::{Header, RecordingFile};
use spdy::{SpdyEvent, SpdyFrames};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
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
    /// The wire from the 101 answer's `Upgrade` and subprotocol headers;
    /// `None` for a protocol the gateway cannot read to record (the
    /// kubelet's base64 channel protocols among them).
    pub(crate) fn of(upgrade: &str, subprotocol: &str) -> Option<Self> {
        if upgrade.eq_ignore_ascii_case("websocket") {
            match subprotocol {
                "SPDY/3.1+portforward.k8s.io" => Some(Wire::SpdyInWebSocket),
                "v5.channel.k8s.io" => Some(Wire::WebSocket { v5: true }),
                p if WS_CHANNEL_PROTOCOLS.contains(&p) => Some(Wire::WebSocket { v5: false }),
                _ => None,
            }
        } else if upgrade.eq_ignore_ascii_case("SPDY/3.1") {
            Some(Wire::Spdy)
        } else {
            None
        }
    }
}

/// The WebSocket subprotocols the gateway reads: binary channel framing
/// (each frame's first byte its channel), and SPDY for port-forward.
pub(crate) const WS_CHANNEL_PROTOCOLS: &[&str] = &[
    "v5.channel.k8s.io",
    "v4.channel.k8s.io",
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
    "channel.k8s.io",
    "SPDY/3.1+portforward.k8s.io",
];

/// Decides a forwarded port: `Err` says why it is refused.
pub(crate) type PortCheck = Arc<dyn Fn(u16) -> Result<(), String> + Send + Sync>;

/// How long the caller's side may stay open once the API server's has ended.
const CALLER_GRACE: Duration = Duration::from_secs(5);

/// At most this many SPDY streams are followed on one connection (each
/// port-forwarded connection opens two).
const MAX_STREAMS: usize = 100_000;

/// What a SPDY stream carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamKind {
    Stdin,
    Stdout,
    Stderr,
    Error,
    Resize,
    /// port-forward: a connection's bytes.
    Data,
    Other,
}

impl StreamKind {
    fn of(name: &str) -> Self {
        match name {
            "stdin" => StreamKind::Stdin,
            "stdout" => StreamKind::Stdout,
            "stderr" => StreamKind::Stderr,
            "error" => StreamKind::Error,
            "resize" => StreamKind::Resize,
            "data" => StreamKind::Data,
            _ => StreamKind::Other,
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
    stdin: bool,
    port_check: Option<PortCheck>,
    cast: Cast,
    status: Vec<u8>,
    resize: Vec<u8>,
    /// SPDY: stream id → what it carries.
    streams: HashMap<u32, StreamKind>,
    /// port-forward: connections opened, by port.
    forwarded: HashMap<String, u64>,
    /// A stream the gateway cannot follow: the relay is cut.
    broken: Option<String>,
}

impl Recording {
    /// A channel's bytes from one side. Only what that side's peer reads
    /// is recorded: stdin and resizes from the caller, stdout, stderr and
    /// the status from the API server (the other side would drop the rest,
    /// so recording it would let a caller write the record).
    fn channel_data(&mut self, from_client: bool, channel: u8, bytes: &[u8]) {
        if self.port_forward {
            return;
        }
        match (from_client, channel) {
            (true, 0) if self.stdin => self.cast.data(Stdio::Stdin, bytes),
            (false, 1) => self.cast.data(Stdio::Stdout, bytes),
            (false, 2) => self.cast.data(Stdio::Stderr, bytes),
            (false, 3) => keep(&mut self.status, bytes),
            (true, 4) => {
                keep(&mut self.resize, bytes);
                self.resizes();
            }
            _ => {}
        }
    }

    fn stream_data(&mut self, from_client: bool, stream: u32, bytes: &[u8]) {
        let channel = match self.streams.get(&stream) {
            Some(StreamKind::Stdin) => 0,
            Some(StreamKind::Stdout) => 1,
            Some(StreamKind::Stderr) => 2,
            Some(StreamKind::Error) => 3,
            Some(StreamKind::Resize) => 4,
            _ => return,
        };
        self.channel_data(from_client, channel, bytes);
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
    fn read(&mut self, from_client: bool, bytes: &[u8], rec: &mut Recording) -> Result<(), String> {
        let r = self.frames(from_client, bytes, rec);
        match (r, rec.broken.take(), rec.cast.truncated()) {
            (Err(e), _, _) | (Ok(()), Some(e), _) => Err(e),
            (Ok(()), None, true) => Err(format!(
                "the recording reached its limit of {} bytes (recording_limit)",
                rec.cast.limit()
            )),
            (Ok(()), None, false) => Ok(()),
        }
    }

    fn frames(
        &mut self,
        from_client: bool,
        bytes: &[u8],
        rec: &mut Recording,
    ) -> Result<(), String> {
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
                            Some(c) => rec.channel_data(from_client, c, bytes),
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
                        if let Err(e) = spdy.feed(bytes, &mut |s| spdy_event(from_client, s, rec)) {
                            failed = Some(e.to_string());
                        }
                    }
                };
                ws.feed(bytes, &mut on).map_err(|e| e.to_string())?;
                failed.map_or(Ok(()), Err)
            }
            (None, Some(spdy)) => spdy
                .feed(bytes, &mut |s| spdy_event(from_client, s, rec))
                .map_err(|e| e.to_string()),
            (None, None) => Ok(()),
        }
    }
}

fn spdy_event(from_client: bool, e: SpdyEvent<'_>, rec: &mut Recording) {
    match e {
        SpdyEvent::Open {
            stream, headers, ..
        } => {
            let find = |name: &str| {
                headers
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.as_str())
                    .unwrap_or_default()
            };
            let kind = StreamKind::of(find("streamtype"));
            if rec.port_forward && kind == StreamKind::Data {
                let port = match find("port").parse::<u16>() {
                    Ok(p) => p,
                    Err(_) => {
                        rec.broken = Some("a forwarded connection names no port".into());
                        return;
                    }
                };
                if let Some(Err(why)) = rec.port_check.as_ref().map(|check| check(port)) {
                    rec.broken = Some(why);
                    return;
                }
                *rec.forwarded.entry(port.to_string()).or_default() += 1;
            }
            if rec.streams.len() >= MAX_STREAMS && !rec.streams.contains_key(&stream) {
                rec.broken = Some(format!("more than {MAX_STREAMS} streams on one connection"));
                return;
            }
            rec.streams.insert(stream, kind);
        }
        SpdyEvent::Data { stream, bytes } => rec.stream_data(from_client, stream, bytes),
        SpdyEvent::Fin { .. } | SpdyEvent::Reset { .. } => {}
    }
}

/// Settings of one relay.
pub(crate) struct RelaySettings {
    pub(crate) wire: Wire,
    pub(crate) port_forward: bool,
    /// exec/attach asked for stdin: without it the API server drops what
    /// the caller sends on that channel, so it is not recorded either.
    pub(crate) stdin: bool,
    /// port-forward: decides each forwarded connection's port as it opens
    /// (SPDY names it then); a refused port cuts the stream.
    pub(crate) port_check: Option<PortCheck>,
    /// Masks what the recording keeps.
    pub(crate) engine: Arc<MaskingEngine>,
    /// The most bytes a recording holds.
    pub(crate) limit: usize,
    /// What the recording's header says.
    pub(crate) header: Header,
    /// Where the recording's bytes go as they are ready (the writer of its
    /// file); `None` for port-forward, which records no content. A sink
    /// that is gone cuts the stream: what is not recorded is not relayed.
    pub(crate) sink: Option<mpsc::Sender<Vec<u8>>>,
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
        stdin: s.stdin,
        port_check: s.port_check,
        cast: Cast::new(s.engine, s.limit, s.header),
        status: Vec::new(),
        resize: Vec::new(),
        streams: HashMap::new(),
        forwarded: HashMap::new(),
        broken: None,
    });
    let (mut cr, mut cw) = tokio::io::split(client);
    let (mut ur, mut uw) = tokio::io::split(upstream);
    let mut from_client = Reader::new(s.wire, true);
    let mut from_server = Reader::new(s.wire, false);
    let (up, down) = {
        let up = pump(
            &mut cr,
            &mut uw,
            &mut from_client,
            true,
            &rec,
            s.sink.as_ref(),
        );
        let down = pump(
            &mut ur,
            &mut cw,
            &mut from_server,
            false,
            &rec,
            s.sink.as_ref(),
        );
        tokio::pin!(up, down);
        // Both directions run until each ends; a direction that fails or
        // cannot be read ends both at once (the other is dropped, so both
        // connections close).
        let (mut up_done, mut down_done) = (None, None);
        // Once the API server's side has ended, the caller has a moment to
        // end too: a silent caller does not hold the record open.
        let grace = tokio::time::sleep(Duration::from_secs(86_400));
        tokio::pin!(grace);
        while up_done.is_none() || down_done.is_none() {
            tokio::select! {
                () = &mut grace, if down_done.is_some() => {
                    up_done = Some(Ok(0));
                }
                r = &mut up, if up_done.is_none() => {
                    let failed = r.is_err();
                    up_done = Some(r);
                    if failed {
                        break;
                    }
                }
                r = &mut down, if down_done.is_none() => {
                    let failed = r.is_err();
                    down_done = Some(r);
                    if failed {
                        break;
                    }
                    grace.as_mut().reset(tokio::time::Instant::now() + CALLER_GRACE);
                }
            }
        }
        (up_done.unwrap_or(Ok(0)), down_done.unwrap_or(Ok(0)))
    };
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
    (out, (!s.port_forward).then_some(rec.cast))
}

/// Copies one direction, reading it into the recording first. `Err`: the
/// bytes could not be read (both sides are then closed by the caller's
/// join ending) or a side failed.
async fn pump<R, W>(
    from: &mut R,
    to: &mut W,
    reader: &mut Reader,
    from_client: bool,
    rec: &Mutex<Recording>,
    sink: Option<&mpsc::Sender<Vec<u8>>>,
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
        let (unreadable, ready) = {
            let mut rec = rec.lock().unwrap_or_else(|p| p.into_inner());
            let r = reader.read(from_client, &buf[..n], &mut rec);
            if let Err(why) = &r {
                rec.cast.marker(&format!("gatehouse cut the stream: {why}"));
            }
            // Without a sink the recording stays whole in memory.
            let ready = if sink.is_some() {
                rec.cast.ready()
            } else {
                Vec::new()
            };
            (r.err(), ready)
        };
        // Recorded (handed to the writer, which slows the stream when it
        // falls behind) before it is relayed.
        if let (Some(sink), false) = (sink, ready.is_empty()) {
            if sink.send(ready).await.is_err() {
                let _ = to.shutdown().await;
                return Err("the recording could not be written".into());
            }
        }
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
mod tests;
