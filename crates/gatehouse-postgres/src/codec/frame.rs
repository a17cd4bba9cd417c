//! Framing of typed protocol messages (`type: u8, length: i32, body`).

/// The byte stream cannot be framed: the connection must be closed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    /// A length below 4 (it includes itself).
    #[error("message {ty:?} declares an invalid length {len}")]
    BadLength {
        /// Message type byte.
        ty: char,
        /// Declared length.
        len: u32,
    },
    /// A message the gateway must read is larger than it accepts.
    #[error("message {ty:?} of {len} bytes exceeds the gateway's limit of {max} bytes")]
    TooLarge {
        /// Message type byte.
        ty: char,
        /// Declared length.
        len: u32,
        /// The limit.
        max: u32,
    },
}

/// What to do with an inspected message; `P` says why a pause is needed.
#[derive(Debug)]
pub enum Flow<P = ()> {
    /// Forward it as it arrived.
    Forward,
    /// Send these bytes in its place.
    Replace(bytes::BytesMut),
    /// Not yet: stop before this message, let the caller do what the pause
    /// asks (asynchronously), then scan it again.
    Pause(P),
}

/// The result of one scan.
#[derive(Debug)]
pub struct Scanned<P = ()> {
    /// Leading bytes that may be forwarded as they are.
    pub forward: usize,
    /// A message right after them to replace: the replacement, and the length
    /// of the original message to skip.
    pub replace: Option<(bytes::BytesMut, usize)>,
    /// Stopped before a message the callback asked to see again later, and why.
    pub pause: Option<P>,
}

/// Walks a stream of typed messages as bytes arrive.
///
/// Messages the caller wants to inspect are handed over whole; all others are
/// passed through as soon as their bytes arrive, even partially, so a large
/// DataRow or CopyData never has to be buffered. The scanner remembers how
/// much of a passed-through message is still to come.
#[derive(Debug)]
pub struct FrameScanner {
    /// Bytes of a passed-through message still to arrive.
    skip: usize,
    /// Largest inspected message accepted (type byte excluded).
    max_inspected: u32,
}

impl FrameScanner {
    /// A scanner that accepts inspected messages up to `max_inspected` bytes.
    pub fn new(max_inspected: u32) -> Self {
        Self {
            skip: 0,
            max_inspected,
        }
    }

    /// Whether everything forwarded so far ended on a message boundary (no
    /// passed-through message is half sent): the gateway may insert its own
    /// message here.
    pub fn at_boundary(&self) -> bool {
        self.skip == 0
    }

    /// Scans `buf` (the unforwarded bytes, starting at a position the scanner
    /// left off), calling `on_message(type, body)` for each complete message
    /// for which `inspect(type)` is true. Returns how many leading bytes of
    /// `buf` may be forwarded now (the rest must be kept and more appended),
    /// or stops at a message the callback wants replaced.
    pub fn scan<E, P>(
        &mut self,
        buf: &[u8],
        inspect: impl Fn(u8) -> bool,
        mut on_message: impl FnMut(u8, &[u8]) -> Result<Flow<P>, E>,
    ) -> Result<Result<Scanned<P>, FrameError>, E> {
        let done = |forward| {
            Ok(Ok(Scanned {
                forward,
                replace: None,
                pause: None,
            }))
        };
        let mut pos = 0;
        if self.skip > 0 {
            let k = self.skip.min(buf.len());
            self.skip -= k;
            pos = k;
            if self.skip > 0 {
                return done(pos);
            }
        }
        loop {
            let rest = &buf[pos..];
            if rest.len() < 5 {
                return done(pos);
            }
            let ty = rest[0];
            let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]);
            if len < 4 || len > i32::MAX as u32 {
                return Ok(Err(FrameError::BadLength {
                    ty: ty as char,
                    len,
                }));
            }
            let total = 1 + len as usize;
            if inspect(ty) {
                if len > self.max_inspected {
                    return Ok(Err(FrameError::TooLarge {
                        ty: ty as char,
                        len,
                        max: self.max_inspected,
                    }));
                }
                if rest.len() < total {
                    return done(pos);
                }
                match on_message(ty, &rest[5..total])? {
                    Flow::Forward => pos += total,
                    Flow::Replace(with) => {
                        return Ok(Ok(Scanned {
                            forward: pos,
                            replace: Some((with, total)),
                            pause: None,
                        }))
                    }
                    Flow::Pause(why) => {
                        return Ok(Ok(Scanned {
                            forward: pos,
                            replace: None,
                            pause: Some(why),
                        }))
                    }
                }
            } else if rest.len() >= total {
                pos += total;
            } else {
                self.skip = total - rest.len();
                return done(buf.len());
            }
        }
    }
}
