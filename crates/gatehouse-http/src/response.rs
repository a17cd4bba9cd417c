//! A response body on its way back: decoded when compressed, the gateway's
//! upstream credential scrubbed, masked by content type, chunk by chunk.
//! Nothing is buffered beyond one JSON value or one text line; what cannot
//! be masked is withheld.

use crate::sse::SseMasker;
use gatehouse_core::MaskingSummary;
use gatehouse_mask::{JsonStream, MaskTally, MaskingEngine, Scratch, TextKind};
use std::io::Write;
use std::sync::Arc;

/// How a body is masked, chosen from its content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyKind {
    /// A JSON document: field rules and detectors, streamed.
    Json,
    /// Server-sent events: each `data:` line masked as it comes.
    EventStream,
    /// Text: line by line, detectors.
    Text,
    /// JSON lines (NDJSON): each line a JSON document.
    JsonLines,
}

impl BodyKind {
    /// The kind for a `Content-Type`; `None` when the gateway cannot mask it.
    pub(crate) fn of(content_type: &str) -> Option<Self> {
        let media = media_type(content_type);
        if media == "application/json" || media.ends_with("+json") {
            Some(BodyKind::Json)
        } else if media == "text/event-stream" {
            Some(BodyKind::EventStream)
        } else if matches!(media.as_str(), "application/x-ndjson" | "application/jsonl") {
            Some(BodyKind::JsonLines)
        } else if media.starts_with("text/")
            || matches!(
                media.as_str(),
                "application/xml" | "application/javascript" | "application/x-www-form-urlencoded"
            )
            || media.ends_with("+xml")
        {
            Some(BodyKind::Text)
        } else {
            None
        }
    }
}

/// The media type without parameters, lower case.
pub(crate) fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Why a body could not be passed on; the caller's response is cut.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyError {
    #[error("the compressed body could not be decoded: {0}")]
    Decode(std::io::Error),
    #[error(transparent)]
    Json(#[from] gatehouse_mask::JsonStreamError),
    #[error("a line of the body is longer than {0} bytes, the most the gateway holds to mask one")]
    LineTooLong(usize),
    #[error("{0}")]
    Unfilterable(String),
}

enum Decoder {
    Identity,
    Gzip(flate2::write::GzDecoder<Vec<u8>>),
    Deflate(flate2::write::ZlibDecoder<Vec<u8>>),
}

impl Decoder {
    /// The decoder for a body's codings (every `Content-Encoding` value, in
    /// order); `None` when the gateway cannot decode them: an unknown coding,
    /// or more than one (a second layer would pass through undecoded).
    fn of(codings: &[String]) -> Option<Self> {
        let real: Vec<&str> = codings
            .iter()
            .map(|c| c.trim())
            .filter(|c| !c.is_empty() && !c.eq_ignore_ascii_case("identity"))
            .collect();
        match real.as_slice() {
            [] => Some(Decoder::Identity),
            [c] if c.eq_ignore_ascii_case("gzip") || c.eq_ignore_ascii_case("x-gzip") => {
                Some(Decoder::Gzip(flate2::write::GzDecoder::new(Vec::new())))
            }
            [c] if c.eq_ignore_ascii_case("deflate") => Some(Decoder::Deflate(
                flate2::write::ZlibDecoder::new(Vec::new()),
            )),
            _ => None,
        }
    }

    /// Decodes `input`, appending the plain bytes to `out`.
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), BodyError> {
        match self {
            Decoder::Identity => out.extend_from_slice(input),
            Decoder::Gzip(d) => {
                d.write_all(input).map_err(BodyError::Decode)?;
                out.append(d.get_mut());
            }
            Decoder::Deflate(d) => {
                d.write_all(input).map_err(BodyError::Decode)?;
                out.append(d.get_mut());
            }
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), BodyError> {
        match self {
            Decoder::Identity => {}
            Decoder::Gzip(d) => {
                d.try_finish().map_err(BodyError::Decode)?;
                out.append(d.get_mut());
            }
            Decoder::Deflate(d) => {
                d.try_finish().map_err(BodyError::Decode)?;
                out.append(d.get_mut());
            }
        }
        Ok(())
    }
}

/// Replaces every occurrence of the gateway's credentials in a stream,
/// holding back only as many bytes as could start one.
struct Scrub {
    secrets: Arc<[String]>,
    held: Vec<u8>,
    longest: usize,
}

const SCRUBBED: &[u8] = b"[masked:upstream-credential]";

impl Scrub {
    fn new(secrets: Arc<[String]>) -> Self {
        let longest = secrets.iter().map(String::len).max().unwrap_or(0);
        Self {
            secrets,
            held: Vec::new(),
            longest,
        }
    }

    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>, last: bool) -> u64 {
        if self.longest == 0 {
            out.extend_from_slice(input);
            return 0;
        }
        self.held.extend_from_slice(input);
        let mut found = 0;
        let mut at = 0;
        loop {
            let hit = self
                .secrets
                .iter()
                .filter_map(|s| {
                    memchr::memmem::find(&self.held[at..], s.as_bytes()).map(|i| (i, s.len()))
                })
                .min();
            match hit {
                Some((i, len)) => {
                    out.extend_from_slice(&self.held[at..at + i]);
                    out.extend_from_slice(SCRUBBED);
                    at += i + len;
                    found += 1;
                }
                None => break,
            }
        }
        // Keep only what could be the start of a secret split across
        // chunks: the longest tail that begins some secret. Anything more
        // would hold a streamed event (a watch, a log line) back until the
        // next one arrives.
        let keep = if last {
            0
        } else {
            let rest = &self.held[at..];
            (1..self.longest.min(rest.len() + 1))
                .rev()
                .find(|&k| {
                    let tail = &rest[rest.len() - k..];
                    self.secrets.iter().any(|s| s.as_bytes().starts_with(tail))
                })
                .unwrap_or(0)
        };
        let end = self.held.len() - keep;
        out.extend_from_slice(&self.held[at..end]);
        self.held.drain(..end);
        found
    }
}

enum Masker {
    None,
    Json(JsonStream),
    Lines { line: Vec<u8> },
    JsonLines { line: Vec<u8> },
    Sse(SseMasker),
}

/// One response body's way through the gateway.
pub(crate) struct BodyPipeline {
    decoder: Decoder,
    scrub: Scrub,
    masker: Masker,
    engine: Option<Arc<MaskingEngine>>,
    scratch: Scratch,
    tally: Option<MaskTally>,
    limit: usize,
    plain: Vec<u8>,
    scrubbed: Vec<u8>,
    credentials_scrubbed: u64,
}

impl BodyPipeline {
    /// A pipeline for a body with this encoding, masked as `kind` by
    /// `engine` (`None`: no masking). `Err` names what cannot be handled.
    pub(crate) fn new(
        codings: &[String],
        kind: Option<BodyKind>,
        engine: Option<Arc<MaskingEngine>>,
        secrets: Arc<[String]>,
        limit: usize,
    ) -> Result<Self, String> {
        let decoder = Decoder::of(codings).ok_or_else(|| {
            format!(
                "the body is encoded as {:?}, which the gateway cannot decode",
                codings.join(", ")
            )
        })?;
        let masker = match (&engine, kind) {
            (None, _) => Masker::None,
            (Some(_), Some(BodyKind::Json)) => Masker::Json(JsonStream::new(limit)),
            (Some(_), Some(BodyKind::Text)) => Masker::Lines { line: Vec::new() },
            (Some(_), Some(BodyKind::EventStream)) => Masker::Sse(SseMasker::new(limit)),
            (Some(_), Some(BodyKind::JsonLines)) => Masker::JsonLines { line: Vec::new() },
            (Some(_), None) => return Err("its content type cannot be masked".into()),
        };
        let tally = engine.as_ref().map(|e| e.tally());
        Ok(Self {
            decoder,
            scrub: Scrub::new(secrets),
            masker,
            engine,
            scratch: Scratch::default(),
            tally,
            limit,
            plain: Vec::new(),
            scrubbed: Vec::new(),
            credentials_scrubbed: 0,
        })
    }

    /// How much of a chunk to pass at a time: a compressed kilobyte can
    /// inflate a thousandfold, so compressed bodies go in small slices and
    /// what they make is sent before the next (memory stays bounded).
    pub(crate) fn slice(&self) -> usize {
        match self.decoder {
            Decoder::Identity => usize::MAX,
            _ => 1024,
        }
    }

    /// Whether the bytes sent can differ from the upstream's (so length
    /// and encoding headers must go).
    pub(crate) fn rewrites(&self) -> bool {
        !matches!(self.decoder, Decoder::Identity)
            || !matches!(self.masker, Masker::None)
            || self.scrub.longest > 0
    }

    /// Passes `input` through, appending what may be sent to `out`.
    pub(crate) fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), BodyError> {
        self.stages(input, false, out)
    }

    /// The body ended: what is still held goes out.
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), BodyError> {
        self.stages(&[], true, out)
    }

    /// Decode, scrub, mask; a stage with nothing to do passes its input on
    /// without copying it.
    fn stages(&mut self, input: &[u8], last: bool, out: &mut Vec<u8>) -> Result<(), BodyError> {
        let mut plain = std::mem::take(&mut self.plain);
        let mut scrubbed = std::mem::take(&mut self.scrubbed);
        let r = (|| {
            let decoded: &[u8] = match self.decoder {
                Decoder::Identity => input,
                _ => {
                    plain.clear();
                    if last {
                        self.decoder.finish(&mut plain)?;
                    } else {
                        self.decoder.feed(input, &mut plain)?;
                    }
                    &plain
                }
            };
            let clean: &[u8] = if self.scrub.longest == 0 {
                decoded
            } else {
                scrubbed.clear();
                self.credentials_scrubbed += self.scrub.feed(decoded, &mut scrubbed, last);
                &scrubbed
            };
            self.mask_bytes(clean, last, out)
        })();
        self.plain = plain;
        self.scrubbed = scrubbed;
        r
    }

    fn mask_bytes(&mut self, input: &[u8], last: bool, out: &mut Vec<u8>) -> Result<(), BodyError> {
        let (Some(engine), Some(tally)) = (&self.engine, &mut self.tally) else {
            out.extend_from_slice(input);
            return Ok(());
        };
        match &mut self.masker {
            Masker::None => out.extend_from_slice(input),
            Masker::Json(j) => {
                j.feed(engine, input, out, &mut self.scratch, tally)?;
                if last {
                    j.finish(engine, out, &mut self.scratch, tally)?;
                }
            }
            Masker::Lines { line } => {
                let mut rest = input;
                while let Some(nl) = memchr::memchr(b'\n', rest) {
                    line.extend_from_slice(&rest[..=nl]);
                    rest = &rest[nl + 1..];
                    mask_line(engine, line, out, &mut self.scratch, tally);
                    line.clear();
                }
                line.extend_from_slice(rest);
                if line.len() > self.limit {
                    return Err(BodyError::LineTooLong(self.limit));
                }
                if last && !line.is_empty() {
                    mask_line(engine, line, out, &mut self.scratch, tally);
                    line.clear();
                }
            }
            Masker::Sse(s) => s.feed(engine, input, last, out, &mut self.scratch, tally)?,
            Masker::JsonLines { line } => {
                let mut rest = input;
                loop {
                    let (piece, complete) = match memchr::memchr(b'\n', rest) {
                        Some(nl) => (&rest[..=nl], true),
                        None => (rest, false),
                    };
                    line.extend_from_slice(piece);
                    rest = &rest[piece.len()..];
                    if line.len() > self.limit {
                        return Err(BodyError::LineTooLong(self.limit));
                    }
                    if complete || (last && rest.is_empty() && !line.is_empty()) {
                        mask_json_line(engine, line, out, &mut self.scratch, tally, self.limit)?;
                        line.clear();
                    }
                    if !complete {
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    /// What masking did, for the record.
    pub(crate) fn summary(&self, exempt_group: Option<String>) -> Option<MaskingSummary> {
        let mut s = match (&self.engine, &self.tally) {
            (Some(e), Some(t)) => {
                let (detectors, rules) = t.named(e);
                MaskingSummary {
                    values_masked: t.total(),
                    detectors,
                    rules,
                    exempt_group,
                }
            }
            _ if exempt_group.is_some() || self.credentials_scrubbed > 0 => MaskingSummary {
                exempt_group,
                ..MaskingSummary::default()
            },
            _ => return None,
        };
        if self.credentials_scrubbed > 0 {
            s.values_masked += self.credentials_scrubbed;
            s.detectors
                .push(("upstream-credential".into(), self.credentials_scrubbed));
        }
        Some(s)
    }
}

/// Masks one JSON line as a document of its own (field rules and
/// detectors); a blank line passes, anything else that is not JSON stops
/// the body.
fn mask_json_line(
    engine: &MaskingEngine,
    line: &[u8],
    out: &mut Vec<u8>,
    scratch: &mut Scratch,
    tally: &mut MaskTally,
    limit: usize,
) -> Result<(), BodyError> {
    if line.trim_ascii().is_empty() {
        out.extend_from_slice(line);
        return Ok(());
    }
    let mut j = JsonStream::new(limit);
    j.feed(engine, line, out, scratch, tally)?;
    j.finish(engine, out, scratch, tally)?;
    Ok(())
}

/// Masks one line of text (detectors) into `out`.
pub(crate) fn mask_line(
    engine: &MaskingEngine,
    line: &[u8],
    out: &mut Vec<u8>,
    scratch: &mut Scratch,
    tally: &mut MaskTally,
) {
    if !engine.mask_inline(line, TextKind::Plain, out, scratch, tally) {
        out.extend_from_slice(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_mask::{
        ColumnRule, ColumnTarget, DetectorSpec, HashKey, JsonPath, Strategy as Mask,
    };
    use proptest::prelude::*;

    fn engine() -> Arc<MaskingEngine> {
        let detectors = gatehouse_mask::BUILTIN
            .iter()
            .map(|d| DetectorSpec::builtin(d, None))
            .collect();
        let rules = vec![ColumnRule {
            target: ColumnTarget::JsonPath(JsonPath::parse("$..ssn").unwrap()),
            strategy: Mask::Redact,
            label: "$..ssn".into(),
        }];
        Arc::new(MaskingEngine::new(detectors, rules, HashKey::new([1; 32])).unwrap())
    }

    /// The body passed whole and in pieces cut at `cuts`: `Ok(output)` or
    /// the error's text.
    fn run(kind: BodyKind, body: &[u8], cuts: &[usize]) -> Result<Vec<u8>, String> {
        let secrets: Arc<[String]> = vec!["s3cret-upstream-token".to_string()].into();
        let mut p = BodyPipeline::new(&[], Some(kind), Some(engine()), secrets, 4096)
            .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        let mut at = 0;
        for &c in cuts {
            let end = (at + c).min(body.len());
            p.feed(&body[at..end], &mut out)
                .map_err(|e| e.to_string())?;
            at = end;
        }
        p.feed(&body[at..], &mut out).map_err(|e| e.to_string())?;
        p.finish(&mut out).map_err(|e| e.to_string())?;
        Ok(out)
    }

    fn pieces() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(
            prop_oneof![
                Just("data: {\"email\":\"ada@example.com\",\"ssn\":\"1\"}\n"),
                Just("data: [1, 2]\r\n"),
                Just("event: x\n"),
                Just(": keep-alive\n"),
                Just("\n"),
                Just("call 4111 1111 1111 1111 now\n"),
                Just("{\"ssn\": \"123-45-6789\", \"a\": [true, null]}\n"),
                Just("s3cret-upstream-token"),
                Just("x"),
            ],
            0..12,
        )
        .prop_map(|v| v.concat().into_bytes())
    }

    proptest! {
        /// Whatever the chunking, a body comes out the same (or is stopped the same).
        #[test]
        fn any_chunking_gives_the_same_answer(
            body in pieces(),
            cuts in prop::collection::vec(1usize..40, 0..12),
            which in 0usize..4,
        ) {
            let kind = [BodyKind::Json, BodyKind::EventStream, BodyKind::Text, BodyKind::JsonLines][which];
            let whole = run(kind, &body, &[]);
            let chunked = run(kind, &body, &cuts);
            prop_assert_eq!(whole.is_ok(), chunked.is_ok(), "{:?} vs {:?}", whole, chunked);
            if let (Ok(a), Ok(b)) = (&whole, &chunked) {
                prop_assert_eq!(a, b);
                prop_assert!(!String::from_utf8_lossy(a).contains("s3cret-upstream-token"));
            }
        }

        /// Arbitrary bytes in any body kind never panic.
        #[test]
        fn arbitrary_bodies_never_panic(
            body in prop::collection::vec(any::<u8>(), 0..300),
            cuts in prop::collection::vec(1usize..40, 0..8),
            which in 0usize..4,
        ) {
            let kind = [BodyKind::Json, BodyKind::EventStream, BodyKind::Text, BodyKind::JsonLines][which];
            let _ = run(kind, &body, &cuts);
        }
    }

    #[test]
    fn a_secret_split_across_chunks_is_still_scrubbed() {
        let secrets: Arc<[String]> = vec!["s3cr3t-token-value".to_string()].into();
        let body = b"before s3cr3t-token-value middle s3cr3t-token-value end";
        for chunk in 1..body.len() {
            let mut s = Scrub::new(secrets.clone());
            let mut out = Vec::new();
            let mut n = 0;
            for c in body.chunks(chunk) {
                n += s.feed(c, &mut out, false);
            }
            n += s.feed(b"", &mut out, true);
            assert_eq!(n, 2);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                "before [masked:upstream-credential] middle [masked:upstream-credential] end"
            );
        }
    }

    #[test]
    fn a_streamed_event_is_not_held_back_for_the_next() {
        let secrets: Arc<[String]> = vec!["s3cr3t-token-value".to_string()].into();
        let mut s = Scrub::new(secrets);
        let mut out = Vec::new();
        // A whole event goes out at once: no tail of it begins the secret.
        s.feed(b"{\"type\":\"ADDED\"}\n", &mut out, false);
        assert_eq!(out, b"{\"type\":\"ADDED\"}\n");
        // A tail that could begin the secret waits for what follows.
        out.clear();
        s.feed(b"event two s3cr", &mut out, false);
        assert_eq!(out, b"event two ");
        s.feed(b"3t-token-value!\n", &mut out, false);
        assert_eq!(out, b"event two [masked:upstream-credential]!\n");
    }

    #[test]
    fn content_types_choose_the_masking() {
        assert_eq!(
            BodyKind::of("application/json; charset=utf-8"),
            Some(BodyKind::Json)
        );
        assert_eq!(
            BodyKind::of("application/problem+json"),
            Some(BodyKind::Json)
        );
        assert_eq!(
            BodyKind::of("text/event-stream"),
            Some(BodyKind::EventStream)
        );
        assert_eq!(BodyKind::of("text/csv"), Some(BodyKind::Text));
        assert_eq!(BodyKind::of("application/octet-stream"), None);
        assert_eq!(BodyKind::of(""), None);
    }

    #[test]
    fn gzip_bodies_are_decoded_before_masking() {
        use flate2::write::GzEncoder;
        let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(b"{\"a\": \"x\"}").unwrap();
        let gz = enc.finish().unwrap();
        let mut p =
            BodyPipeline::new(&["gzip".into()], None, None, Arc::from(vec![]), 1024).unwrap();
        let mut out = Vec::new();
        for c in gz.chunks(3) {
            p.feed(c, &mut out).unwrap();
        }
        p.finish(&mut out).unwrap();
        assert_eq!(out, b"{\"a\": \"x\"}");
        for refused in [&["br".to_string()][..], &["gzip".into(), "gzip".into()]] {
            assert!(BodyPipeline::new(refused, None, None, Arc::from(vec![]), 1024).is_err());
        }
    }
}
