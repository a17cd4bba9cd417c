//! An exec or attach session as an asciicast v2 recording: a header line,
//! then one JSON array per event (`[seconds, "o", text]` for output,
//! stdout and stderr alike as a terminal shows them, `"i"` for input,
//! `"r"` for a resize, `"m"` for a marker such as the exit status). Every
//! text is masked by the connection's detectors before it is kept, and the
//! events stop (with a marker) once the recording reaches its limit; the
//! byte counts go on.

use gatehouse_mask::MaskingEngine;
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

/// Which stream an event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stdio {
    Stdin,
    Stdout,
    Stderr,
}

/// A recording being made.
pub(crate) struct Cast {
    start: Instant,
    events: Vec<u8>,
    limit: usize,
    truncated: bool,
    size: Option<(u32, u32)>,
    /// An incomplete UTF-8 sequence at the end of each stream's last chunk.
    carry: [Vec<u8>; 3],
    engine: Arc<MaskingEngine>,
    /// Bytes seen on stdin, stdout and stderr (all, recorded or not).
    pub(crate) bytes: [u64; 3],
}

impl Cast {
    pub(crate) fn new(engine: Arc<MaskingEngine>, limit: usize) -> Self {
        Self {
            start: Instant::now(),
            events: Vec::new(),
            limit,
            truncated: false,
            size: None,
            carry: Default::default(),
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
        if self.events.len() + line.len() + 1 > self.limit {
            self.truncated = true;
            let note = json!([
                self.at(),
                "m",
                format!("gatehouse: the recording reached its limit of {} bytes; later events are counted, not kept", self.limit)
            ])
            .to_string();
            self.events.extend_from_slice(note.as_bytes());
            self.events.push(b'\n');
            return;
        }
        self.events.extend_from_slice(line.as_bytes());
        self.events.push(b'\n');
    }

    /// Bytes of a stream.
    pub(crate) fn data(&mut self, which: Stdio, bytes: &[u8]) {
        let i = which as usize;
        self.bytes[i] += bytes.len() as u64;
        let mut carry = std::mem::take(&mut self.carry[i]);
        carry.extend_from_slice(bytes);
        // Keep an incomplete character for the next chunk.
        let cut = match std::str::from_utf8(&carry) {
            Ok(_) => carry.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => carry.len(),
        };
        let rest = carry.split_off(cut);
        if !carry.is_empty() {
            let text = String::from_utf8_lossy(&carry);
            let masked = crate::answer::mask_for_record(&self.engine, &text);
            let code = if which == Stdio::Stdin { "i" } else { "o" };
            self.event(code, &masked);
        }
        self.carry[i] = rest;
    }

    /// The terminal's new size; the first is the header's (kubectl sends
    /// it as the session opens, before the command writes).
    pub(crate) fn resize(&mut self, width: u32, height: u32) {
        if self.size.is_none() {
            self.size = Some((width, height));
        }
        self.event("r", &format!("{width}x{height}"));
    }

    /// A marker (the exit status, why the stream ended).
    pub(crate) fn marker(&mut self, text: &str) {
        self.event("m", text);
    }

    /// The whole recording: the header, then the events.
    pub(crate) fn finish(mut self, title: &str, command: &str, started_unix: i64) -> Vec<u8> {
        for i in 0..3 {
            if !self.carry[i].is_empty() {
                let which = [Stdio::Stdin, Stdio::Stdout, Stdio::Stderr][i];
                let rest = std::mem::take(&mut self.carry[i]);
                self.bytes[i] -= rest.len() as u64;
                self.data(which, &rest);
                self.carry[i].clear();
            }
        }
        let (width, height) = self.size.unwrap_or((80, 24));
        let mut out = json!({
            "version": 2,
            "width": width,
            "height": height,
            "timestamp": started_unix,
            "title": title,
            "command": command,
        })
        .to_string()
        .into_bytes();
        out.push(b'\n');
        out.extend_from_slice(&self.events);
        out
    }

    /// Whether events were dropped at the limit.
    pub(crate) fn truncated(&self) -> bool {
        self.truncated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cast(limit: usize) -> Cast {
        Cast::new(Arc::new(MaskingEngine::secrets_only()), limit)
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
        let text =
            String::from_utf8(c.finish("kubectl exec prod/web-1", "sh", 1_700_000_000)).unwrap();
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
        // A character split across chunks is kept whole, never replaced.
        assert_eq!(lines[2][2], "h");
        assert_eq!(lines[3][2], "\u{e9}");
        assert_eq!(
            (lines[4][1].as_str(), lines[4][2].as_str()),
            (Some("i"), Some("ls\n"))
        );
        assert_eq!(lines[5][2], "oops\n");
        assert_eq!(lines[6][2], "exit 3");
    }

    #[test]
    fn past_the_limit_events_are_counted_not_kept() {
        let mut c = cast(200);
        for _ in 0..50 {
            c.data(Stdio::Stdout, b"0123456789");
        }
        assert!(c.truncated());
        assert_eq!(c.bytes[1], 500);
        let text = String::from_utf8(c.finish("t", "c", 0)).unwrap();
        assert!(text.contains("reached its limit"), "{text}");
        assert!(text.len() < 600);
    }
}
