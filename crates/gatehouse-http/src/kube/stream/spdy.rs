//! SPDY/3.1 frames read as they pass, in one direction (kubectl's exec,
//! attach and port-forward before WebSocket): the gateway relays every
//! byte unchanged and reads which stream is which from the streams' header
//! blocks, and the data each stream carries. Header blocks are one zlib
//! stream per direction, primed with SPDY/3's dictionary, so every block
//! is inflated in order, whether its headers matter or not.

use flate2::{Decompress, FlushDecompress, Status};

/// What a chunk of frames held.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SpdyEvent<'a> {
    /// A stream opened (SYN_STREAM) with its headers (lower-case names).
    Open {
        stream: u32,
        headers: Vec<(String, String)>,
        fin: bool,
    },
    /// Data on a stream.
    Data { stream: u32, bytes: &'a [u8] },
    /// The sender finished a stream.
    Fin { stream: u32 },
    /// A stream was reset.
    Reset { stream: u32 },
}

/// Why the frames cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SpdyError {
    #[error("a SPDY control frame of version {0} (only 3 is spoken)")]
    Version(u16),
    #[error("a SPDY control frame of {0} bytes, more than the gateway reads")]
    TooLarge(usize),
    #[error("a SPDY frame is shorter than its kind")]
    Short,
    #[error("a SPDY header block does not inflate: {0}")]
    Inflate(String),
    #[error("a SPDY header block is malformed")]
    Headers,
    #[error(
        "a SPDY control frame of type {0} and {1} bytes, which its readers would read otherwise"
    )]
    Control(u16, usize),
    #[error("a SPDY stream was opened with id {0}, not above the last one ({1})")]
    StreamId(u32, u32),
}

/// The largest control frame read (a header block, compressed).
const MAX_CONTROL: usize = 64 * 1024;
/// The largest header block once inflated.
const MAX_HEADERS: usize = 256 * 1024;

const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const SETTINGS: u16 = 4;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const WINDOW_UPDATE: u16 = 9;
const FLAG_FIN: u8 = 0x01;

enum State {
    Head,
    Control { kind: u16, flags: u8, len: usize },
    Data { stream: u32, flags: u8, left: usize },
}

/// One direction's frame reader.
pub(crate) struct SpdyFrames {
    state: State,
    buf: Vec<u8>,
    inflate: Decompress,
    inflated: Vec<u8>,
    /// The last stream this side opened: ids only grow (spdystream refuses
    /// a reused one, so the first stream of an id is the one that counts).
    last_stream: u32,
}

impl SpdyFrames {
    pub(crate) fn new() -> Self {
        Self {
            state: State::Head,
            buf: Vec::with_capacity(8),
            inflate: Decompress::new(true),
            inflated: Vec::new(),
            last_stream: 0,
        }
    }

    /// Reads `input`, calling `on` for what it holds.
    pub(crate) fn feed(
        &mut self,
        mut input: &[u8],
        on: &mut dyn FnMut(SpdyEvent<'_>),
    ) -> Result<(), SpdyError> {
        while !input.is_empty() {
            match self.state {
                State::Head => {
                    let take = (8 - self.buf.len()).min(input.len());
                    self.buf.extend_from_slice(&input[..take]);
                    input = &input[take..];
                    if self.buf.len() == 8 {
                        self.start_frame(on)?;
                    }
                }
                State::Control { kind, flags, len } => {
                    let take = (len - self.buf.len()).min(input.len());
                    self.buf.extend_from_slice(&input[..take]);
                    input = &input[take..];
                    if self.buf.len() == len {
                        let body = std::mem::take(&mut self.buf);
                        self.state = State::Head;
                        self.control(kind, flags, &body, on)?;
                    }
                }
                State::Data {
                    stream,
                    flags,
                    left,
                } => {
                    let take = left.min(input.len());
                    let (chunk, rest) = input.split_at(take);
                    input = rest;
                    if !chunk.is_empty() {
                        on(SpdyEvent::Data {
                            stream,
                            bytes: chunk,
                        });
                    }
                    let left = left - take;
                    self.state = State::Data {
                        stream,
                        flags,
                        left,
                    };
                    if left == 0 {
                        self.end_data(stream, flags, on);
                    }
                }
            }
        }
        Ok(())
    }

    fn start_frame(&mut self, on: &mut dyn FnMut(SpdyEvent<'_>)) -> Result<(), SpdyError> {
        let h = std::mem::take(&mut self.buf);
        let len = (usize::from(h[5]) << 16) | (usize::from(h[6]) << 8) | usize::from(h[7]);
        let flags = h[4];
        if h[0] & 0x80 != 0 {
            let version = u16::from_be_bytes([h[0] & 0x7f, h[1]]);
            if version != 3 {
                return Err(SpdyError::Version(version));
            }
            if len > MAX_CONTROL {
                return Err(SpdyError::TooLarge(len));
            }
            let kind = u16::from_be_bytes([h[2], h[3]]);
            self.state = State::Control { kind, flags, len };
            if len == 0 {
                self.state = State::Head;
                self.control(kind, flags, &[], on)?;
            }
        } else {
            let stream = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) & 0x7fff_ffff;
            self.state = State::Data {
                stream,
                flags,
                left: len,
            };
            if len == 0 {
                self.end_data(stream, flags, on);
            }
        }
        Ok(())
    }

    fn end_data(&mut self, stream: u32, flags: u8, on: &mut dyn FnMut(SpdyEvent<'_>)) {
        self.state = State::Head;
        if flags & FLAG_FIN != 0 {
            on(SpdyEvent::Fin { stream });
        }
    }

    fn control(
        &mut self,
        kind: u16,
        flags: u8,
        body: &[u8],
        on: &mut dyn FnMut(SpdyEvent<'_>),
    ) -> Result<(), SpdyError> {
        let stream_id = |b: &[u8]| -> Result<u32, SpdyError> {
            let s: [u8; 4] = b
                .get(..4)
                .ok_or(SpdyError::Short)?
                .try_into()
                .map_err(|_| SpdyError::Short)?;
            Ok(u32::from_be_bytes(s) & 0x7fff_ffff)
        };
        // Frames of fixed size must be exactly that size: a reader that
        // reads the size it expects would see the rest as other frames.
        let fixed = match kind {
            PING => Some(4),
            RST_STREAM | GOAWAY | WINDOW_UPDATE => Some(8),
            SETTINGS => {
                let n = stream_id(body).map(|n| n as usize).unwrap_or(usize::MAX);
                Some(n.saturating_mul(8).saturating_add(4))
            }
            SYN_STREAM | SYN_REPLY | HEADERS => None,
            other => return Err(SpdyError::Control(other, body.len())),
        };
        if fixed.is_some_and(|n| n != body.len()) {
            return Err(SpdyError::Control(kind, body.len()));
        }
        match kind {
            SYN_STREAM => {
                let stream = stream_id(body)?;
                if stream == 0 || stream <= self.last_stream {
                    return Err(SpdyError::StreamId(stream, self.last_stream));
                }
                self.last_stream = stream;
                let block = body.get(10..).ok_or(SpdyError::Short)?;
                let headers = self.headers(block)?;
                on(SpdyEvent::Open {
                    stream,
                    headers,
                    fin: flags & FLAG_FIN != 0,
                });
                if flags & FLAG_FIN != 0 {
                    on(SpdyEvent::Fin { stream });
                }
            }
            SYN_REPLY | HEADERS => {
                let stream = stream_id(body)?;
                // Inflated to keep the zlib stream in step; not needed.
                self.headers(body.get(4..).ok_or(SpdyError::Short)?)?;
                if flags & FLAG_FIN != 0 {
                    on(SpdyEvent::Fin { stream });
                }
            }
            RST_STREAM => on(SpdyEvent::Reset {
                stream: stream_id(body)?,
            }),
            // SETTINGS, PING, GOAWAY, WINDOW_UPDATE: nothing to record.
            _ => {}
        }
        Ok(())
    }

    /// Inflates one header block and reads its name/value pairs.
    fn headers(&mut self, block: &[u8]) -> Result<Vec<(String, String)>, SpdyError> {
        self.inflated.clear();
        let mut input = block;
        loop {
            self.inflated.reserve(4096);
            let before_in = self.inflate.total_in();
            let before_out = self.inflated.len();
            let r = self
                .inflate
                .decompress_vec(input, &mut self.inflated, FlushDecompress::Sync);
            let used = (self.inflate.total_in() - before_in) as usize;
            input = &input[used..];
            match r {
                // SPDY's header stream never ends: an end is not SPDY.
                Ok(Status::StreamEnd) => {
                    return Err(SpdyError::Inflate("the header stream ended".into()))
                }
                // No progress with input left: it can never be read.
                Ok(_) if used == 0 && self.inflated.len() == before_out && !input.is_empty() => {
                    return Err(SpdyError::Inflate(
                        "the header block makes no progress".into(),
                    ))
                }
                Ok(Status::Ok | Status::BufError) => {}
                Err(e) if e.needs_dictionary().is_some() => {
                    self.inflate
                        .set_dictionary(spdy3_dictionary())
                        .map_err(|e| SpdyError::Inflate(e.to_string()))?;
                    continue;
                }
                Err(e) => return Err(SpdyError::Inflate(e.to_string())),
            }
            if self.inflated.len() > MAX_HEADERS {
                return Err(SpdyError::TooLarge(self.inflated.len()));
            }
            // Done once the block is read and the output has room to spare.
            if input.is_empty() && self.inflated.len() < self.inflated.capacity() {
                break;
            }
        }
        parse_block(&self.inflated)
    }
}

/// A name/value header block: a count, then length-prefixed names and values.
fn parse_block(b: &[u8]) -> Result<Vec<(String, String)>, SpdyError> {
    let mut at = 0;
    let u32_at = |at: &mut usize| -> Result<usize, SpdyError> {
        let v: [u8; 4] = b
            .get(*at..*at + 4)
            .ok_or(SpdyError::Headers)?
            .try_into()
            .map_err(|_| SpdyError::Headers)?;
        *at += 4;
        Ok(u32::from_be_bytes(v) as usize)
    };
    let count = u32_at(&mut at)?;
    let mut out = Vec::with_capacity(count.min(64));
    for _ in 0..count {
        let n = u32_at(&mut at)?;
        let name = b.get(at..at + n).ok_or(SpdyError::Headers)?;
        at += n;
        let n = u32_at(&mut at)?;
        let value = b.get(at..at + n).ok_or(SpdyError::Headers)?;
        at += n;
        // Several values are separated by NUL; readers (spdystream) take
        // the first.
        let first = value.split(|b| *b == 0).next().unwrap_or_default();
        out.push((
            String::from_utf8_lossy(name).to_ascii_lowercase(),
            String::from_utf8_lossy(first).into_owned(),
        ));
    }
    // Bytes after the pairs would start the next block to another reader.
    if at != b.len() {
        return Err(SpdyError::Headers);
    }
    Ok(out)
}

/// SPDY/3's header compression dictionary (draft 3, section 2.6.10.1):
/// length-prefixed header names and common values, then a run of status
/// codes, reason phrases, dates and media types.
pub(crate) fn spdy3_dictionary() -> &'static [u8] {
    static DICTIONARY: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    DICTIONARY.get_or_init(|| {
        const WORDS: &[&str] = &[
            "options",
            "head",
            "post",
            "put",
            "delete",
            "trace",
            "accept",
            "accept-charset",
            "accept-encoding",
            "accept-language",
            "accept-ranges",
            "age",
            "allow",
            "authorization",
            "cache-control",
            "connection",
            "content-base",
            "content-encoding",
            "content-language",
            "content-length",
            "content-location",
            "content-md5",
            "content-range",
            "content-type",
            "date",
            "etag",
            "expect",
            "expires",
            "from",
            "host",
            "if-match",
            "if-modified-since",
            "if-none-match",
            "if-range",
            "if-unmodified-since",
            "last-modified",
            "location",
            "max-forwards",
            "pragma",
            "proxy-authenticate",
            "proxy-authorization",
            "range",
            "referer",
            "retry-after",
            "server",
            "te",
            "trailer",
            "transfer-encoding",
            "upgrade",
            "user-agent",
            "vary",
            "via",
            "warning",
            "www-authenticate",
            "method",
            "get",
            "status",
            "200 OK",
            "version",
            "HTTP/1.1",
            "url",
            "public",
            "set-cookie",
            "keep-alive",
            "origin",
        ];
        const TAIL: &str = concat!(
            "100101201202205206300302303304305306307402405406407408409410411412413414415416417",
            "502504505203 Non-Authoritative Information204 No Content301 Moved Permanently",
            "400 Bad Request401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error",
            "501 Not Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct ",
            "Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,",
            "image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,text/javascript,",
            "publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.",
        );
        let mut d = Vec::with_capacity(1423);
        for w in WORDS {
            d.extend_from_slice(&(w.len() as u32).to_be_bytes());
            d.extend_from_slice(w.as_bytes());
        }
        d.extend_from_slice(TAIL.as_bytes());
        d
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::stream::fixtures::{block, compressor, spdy_data, syn_stream};
    use flate2::FlushCompress;

    /// The dictionary zlib streams name by its Adler-32.
    #[test]
    fn the_dictionary_is_spdy3s() {
        let d = spdy3_dictionary();
        let (mut a, mut b) = (1u32, 0u32);
        for &x in d {
            a = (a + u32::from(x)) % 65521;
            b = (b + a) % 65521;
        }
        assert_eq!((d.len(), (b << 16) | a), (1423, 0xE3C6_A7C2));
    }

    #[test]
    fn streams_are_named_by_their_headers_in_any_pieces() {
        let mut z = compressor();
        let mut wire = Vec::new();
        wire.extend(syn_stream(
            1,
            &block(&mut z, &[("streamtype", "error")], FlushCompress::Sync),
        ));
        wire.extend(syn_stream(
            3,
            &block(&mut z, &[("streamtype", "stdout")], FlushCompress::Sync),
        ));
        wire.extend(syn_stream(
            5,
            &block(
                &mut z,
                &[("streamtype", "stderr"), ("x", "y")],
                FlushCompress::Sync,
            ),
        ));
        wire.extend(spdy_data(3, false, b"hello "));
        wire.extend(spdy_data(5, false, b"oops"));
        wire.extend(spdy_data(3, true, b"world"));
        // A PING, which carries nothing to record.
        wire.extend([0x80, 3, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1]);
        for cut in [1, 5, 13, 4096] {
            let mut r = SpdyFrames::new();
            let mut names = Vec::new();
            let mut out: Vec<(u32, Vec<u8>)> = Vec::new();
            let mut fins = Vec::new();
            for piece in wire.chunks(cut) {
                r.feed(piece, &mut |e| match e {
                    SpdyEvent::Open {
                        stream, headers, ..
                    } => names.push((stream, headers)),
                    SpdyEvent::Data { stream, bytes } => out.push((stream, bytes.to_vec())),
                    SpdyEvent::Fin { stream } => fins.push(stream),
                    SpdyEvent::Reset { .. } => {}
                })
                .unwrap();
            }
            assert_eq!(names.len(), 3, "cut {cut}");
            assert_eq!(
                names[1],
                (3, vec![("streamtype".to_string(), "stdout".to_string())])
            );
            assert_eq!(names[2].1.len(), 2);
            let stdout: Vec<u8> = out
                .iter()
                .filter(|(s, _)| *s == 3)
                .flat_map(|(_, b)| b.clone())
                .collect();
            assert_eq!(stdout, b"hello world");
            assert_eq!(fins, [3]);
        }
    }

    #[test]
    fn a_wrong_version_or_a_garbled_block_is_named() {
        let mut r = SpdyFrames::new();
        let e = r
            .feed(&[0x80, 2, 0, 1, 0, 0, 0, 0], &mut |_| {})
            .unwrap_err();
        assert_eq!(e, SpdyError::Version(2));
        let mut r = SpdyFrames::new();
        let mut f = vec![0x80, 3, 0, 1, 0, 0, 0, 14, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        f.extend_from_slice(b"junk");
        assert!(matches!(
            r.feed(&f, &mut |_| {}),
            Err(SpdyError::Inflate(_))
        ));
    }
}
