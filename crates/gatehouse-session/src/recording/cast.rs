//! An exec or attach session as an asciicast v2 recording: a header line,
//! then one JSON array per event (`[seconds, "o", text]` for output,
//! stdout and stderr alike as a terminal shows them, `"i"` for input,
//! `"r"` for a resize, `"m"` for a marker such as the exit status). Every
//! text is masked by the connection's detectors a line at a time (up to
//! 4 KiB), so a value split across chunks, or typed a key at a time, is
//! still found. A recording that reaches its limit says so in a marker, and
//! the relay cuts the stream: what is not recorded is not relayed.

use super::lines::Lines;
use gatehouse_mask::MaskingEngine;

/// Events held back while the header waits to learn the terminal's size.
const HEADER_WAIT: usize = 64 * 1024;
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

/// Which stream an event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdio {
    /// What the caller typed or sent.
    Stdin,
    /// The command's output.
    Stdout,
    /// Its errors (shown as output, as a terminal shows them).
    Stderr,
}

/// What the recording's header says besides the terminal's size.
pub struct Header {
    /// The title: what ran, where.
    pub title: String,
    /// The command as recorded (masked).
    pub command: String,
    /// When it started, in seconds since 1970.
    pub started_unix: i64,
}

/// A recording being made. Its bytes are handed out as they are ready
/// ([`Cast::ready`]) to be written as the stream goes, so a recording
/// costs memory for a chunk's events, not for the session.
pub struct Cast {
    start: Instant,
    events: Vec<u8>,
    header: Header,
    /// The header went out (then every event goes out as it comes).
    header_out: bool,
    /// An output event was recorded (the header need not wait for a size).
    output_seen: bool,
    /// Bytes handed out so far, header included.
    written: usize,
    limit: usize,
    truncated: bool,
    size: Option<(u32, u32)>,
    /// Each stream's bytes since its last whole line.
    pending: [Lines; 3],
    engine: Arc<MaskingEngine>,
    /// Bytes seen on stdin, stdout and stderr (all, recorded or not).
    pub bytes: [u64; 3],
}

impl Cast {
    pub fn new(engine: Arc<MaskingEngine>, limit: usize, header: Header) -> Self {
        Self {
            start: Instant::now(),
            events: Vec::new(),
            header,
            header_out: false,
            output_seen: false,
            written: 0,
            limit,
            truncated: false,
            size: None,
            pending: [Lines::new(true), Lines::new(false), Lines::new(false)],
            engine,
            bytes: [0; 3],
        }
    }

    fn at(&self) -> f64 {
        (self.start.elapsed().as_micros() as f64) / 1e6
    }

    fn event(&mut self, code: &str, text: &str) {
        if self.truncated {
            return;
        }
        let line = json!([self.at(), code, text]).to_string();
        if self.written + self.events.len() + line.len() + 1 > self.limit {
            self.truncated = true;
            let note = json!([
                self.at(),
                "m",
                format!(
                    "gatehouse: the recording reached its limit of {} bytes; the stream was cut",
                    self.limit
                )
            ])
            .to_string();
            self.events.extend_from_slice(note.as_bytes());
            self.events.push(b'\n');
            return;
        }
        self.events.extend_from_slice(line.as_bytes());
        self.events.push(b'\n');
    }

    /// Bytes of a stream: kept until a line ends (or 4 KiB gather, or a
    /// PEM block ends), then masked and recorded as one event.
    pub fn data(&mut self, which: Stdio, bytes: &[u8]) {
        let i = which as usize;
        self.bytes[i] += bytes.len() as u64;
        let mut lines = std::mem::take(&mut self.pending[i]);
        lines.feed(bytes, &mut |unit| self.emit(which, unit));
        self.pending[i] = lines;
    }

    fn emit(&mut self, which: Stdio, bytes: &[u8]) {
        let text = String::from_utf8_lossy(bytes);
        let masked = super::mask_for_record(&self.engine, &text);
        let code = if which == Stdio::Stdin { "i" } else { "o" };
        self.output_seen |= code == "o";
        self.event(code, &masked);
    }

    /// Writes what waits for a line end (before a marker, and at the end).
    fn flush(&mut self) {
        for (i, which) in [Stdio::Stdin, Stdio::Stdout, Stdio::Stderr]
            .into_iter()
            .enumerate()
        {
            let mut lines = std::mem::take(&mut self.pending[i]);
            lines.flush(&mut |unit| self.emit(which, unit));
            self.pending[i] = lines;
        }
    }

    /// The terminal's new size; the first is the header's (kubectl sends
    /// it as the session opens, before the command writes).
    pub fn resize(&mut self, width: u32, height: u32) {
        if self.size.is_none() {
            self.size = Some((width, height));
        }
        self.event("r", &format!("{width}x{height}"));
    }

    /// A marker (the exit status, why the stream ended).
    pub fn marker(&mut self, text: &str) {
        self.flush();
        self.event("m", text);
    }

    /// The bytes ready to be written: nothing until the header can say the
    /// terminal's size (a resize came, or output did: then there is no
    /// terminal, or 64 KiB of events wait), then the header and every
    /// event as it comes.
    pub fn ready(&mut self) -> Vec<u8> {
        if !self.header_out
            && self.size.is_none()
            && !self.output_seen
            && self.events.len() < HEADER_WAIT
        {
            return Vec::new();
        }
        self.take()
    }

    fn take(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if !self.header_out {
            self.header_out = true;
            let (width, height) = self.size.unwrap_or((80, 24));
            out = json!({
                "version": 2,
                "width": width,
                "height": height,
                "timestamp": self.header.started_unix,
                "title": self.header.title,
                "command": self.header.command,
            })
            .to_string()
            .into_bytes();
            out.push(b'\n');
        }
        out.append(&mut self.events);
        self.written += out.len();
        out
    }

    /// The rest of the recording: what waited for a line end, and the
    /// header if it has not gone out yet.
    pub fn finish(mut self) -> Vec<u8> {
        self.flush();
        self.take()
    }

    /// Whether the recording reached its limit (the relay then cuts).
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// The limit, in bytes of events.
    pub fn limit(&self) -> usize {
        self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            title: "kubectl exec prod/web-1".into(),
            command: "sh".into(),
            started_unix: 1_700_000_000,
        }
    }

    fn cast(limit: usize) -> Cast {
        Cast::new(Arc::new(MaskingEngine::secrets_only()), limit, header())
    }

    #[test]
    fn a_recording_is_asciicast_v2() {
        let mut c = cast(1 << 20);
        c.resize(120, 40);
        c.data(Stdio::Stdout, "h\u{e9}".as_bytes().split_at(2).0);
        c.data(Stdio::Stdout, &"h\u{e9}".as_bytes()[2..]);
        c.data(Stdio::Stdin, b"ls\n");
        c.data(Stdio::Stderr, b"oops\n");
        c.marker("exit 3");
        let text = String::from_utf8(c.finish()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["version"], 2);
        assert_eq!(
            (lines[0]["width"].as_u64(), lines[0]["height"].as_u64()),
            (Some(120), Some(40))
        );
        assert_eq!(lines[1][1], "r");
        // stdin's line first (the only whole line before the marker), then
        // what waited for a line end: a character split across chunks is
        // kept whole.
        assert_eq!(
            (lines[2][1].as_str(), lines[2][2].as_str()),
            (Some("i"), Some("ls\n"))
        );
        assert_eq!(lines[3][2], "oops\n");
        assert_eq!(lines[4][2], "h\u{e9}");
        assert_eq!(lines[5][2], "exit 3");
    }

    #[test]
    fn a_private_key_is_masked_whole_and_enter_ends_a_typed_line() {
        let mut c = Cast::new(Arc::new(MaskingEngine::secrets_only()), 1 << 20, header());
        let key = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\nVJTUt9Us8cKjMzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDu\n-----END PRIVATE KEY-----\n";
        c.data(Stdio::Stdout, key.as_bytes());
        for b in b"ls\r" {
            c.data(Stdio::Stdin, &[*b]);
        }
        c.data(Stdio::Stdout, b"after\n");
        let text = String::from_utf8(c.finish()).unwrap();
        assert!(
            !text.contains("MIIEvQIBADAN") && !text.contains("VJTUt9Us8c"),
            "{text}"
        );
        assert!(text.contains(r#""i","ls\r"]"#), "{text}");
        assert!(text.contains("after"), "{text}");
    }

    #[test]
    fn events_go_out_as_they_come_once_the_header_knows_the_size() {
        let mut c = cast(1 << 20);
        c.data(Stdio::Stdin, b"\x00");
        c.data(Stdio::Stdin, b"\n");
        // Input alone: the header waits to learn the terminal's size.
        assert!(c.ready().is_empty());
        c.resize(132, 50);
        let first = c.ready();
        let head: serde_json::Value =
            serde_json::from_slice(first.split(|b| *b == b'\n').next().unwrap()).unwrap();
        assert_eq!(
            (head["width"].as_u64(), head["height"].as_u64()),
            (Some(132), Some(50))
        );
        assert_eq!(head["title"], "kubectl exec prod/web-1");
        c.data(Stdio::Stdout, b"out\n");
        let second = c.ready();
        assert!(String::from_utf8_lossy(&second).contains("out"));
        assert!(c.ready().is_empty());
        c.data(Stdio::Stdout, b"tail");
        let rest = c.finish();
        let whole = String::from_utf8([first, second, rest].concat()).unwrap();
        assert_eq!(whole.lines().count(), 5, "{whole}");
        assert!(whole.ends_with("\"tail\"]\n"), "{whole}");
    }

    #[test]
    fn the_limit_is_named() {
        let mut c = cast(200);
        for _ in 0..50 {
            c.data(Stdio::Stdout, b"0123456789\n");
        }
        assert!(c.truncated());
        assert_eq!(c.bytes[1], 550);
        let text = String::from_utf8(c.finish()).unwrap();
        assert!(text.contains("reached its limit"), "{text}");
        assert!(text.len() < 600);
    }

    #[test]
    fn a_value_split_across_chunks_or_typed_a_key_at_a_time_is_masked() {
        let engine = MaskingEngine::new(
            gatehouse_mask::BUILTIN
                .iter()
                .filter(|d| d.name == "email")
                .map(|d| gatehouse_mask::DetectorSpec::builtin(d, None))
                .collect(),
            Vec::new(),
            gatehouse_mask::HashKey::new([0; 32]),
        )
        .unwrap();
        let mut c = Cast::new(Arc::new(engine), 1 << 20, header());
        c.data(Stdio::Stdout, b"mail alice@exa");
        c.data(Stdio::Stdout, b"mple.com now\n");
        for b in b"bob@example.com\r" {
            c.data(Stdio::Stdin, &[*b]);
        }
        let text = String::from_utf8(c.finish()).unwrap();
        assert!(!text.contains("alice@") && !text.contains("bob@"), "{text}");
        assert_eq!(text.matches("[masked:email]").count(), 2, "{text}");
    }
}
