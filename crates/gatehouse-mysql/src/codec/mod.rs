//! The MySQL client/server protocol on the wire: packet framing here, one
//! file per message family below it. Decoders take a payload slice and
//! return `None` (or an error) on anything malformed; they never panic.

pub(crate) mod binary;
pub(crate) mod command;
pub(crate) mod handshake;
pub(crate) mod result;
pub(crate) mod wire;

#[cfg(test)]
mod tests;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A packet's header: three bytes of length, one of sequence number.
pub(crate) const HEADER: usize = 4;
/// The longest payload one packet carries; a payload this long continues
/// in the next packet.
pub(crate) const MAX_PAYLOAD: usize = 0xFF_FFFF;

/// Capability flags (`CLIENT_*`) the gateway reads or sets.
pub(crate) mod caps {
    pub(crate) const LONG_PASSWORD: u32 = 1;
    pub(crate) const FOUND_ROWS: u32 = 1 << 1;
    pub(crate) const LONG_FLAG: u32 = 1 << 2;
    pub(crate) const CONNECT_WITH_DB: u32 = 1 << 3;
    pub(crate) const COMPRESS: u32 = 1 << 5;
    pub(crate) const LOCAL_FILES: u32 = 1 << 7;
    pub(crate) const PROTOCOL_41: u32 = 1 << 9;
    pub(crate) const INTERACTIVE: u32 = 1 << 10;
    pub(crate) const SSL: u32 = 1 << 11;
    pub(crate) const TRANSACTIONS: u32 = 1 << 13;
    pub(crate) const SECURE_CONNECTION: u32 = 1 << 15;
    pub(crate) const MULTI_STATEMENTS: u32 = 1 << 16;
    pub(crate) const MULTI_RESULTS: u32 = 1 << 17;
    pub(crate) const PS_MULTI_RESULTS: u32 = 1 << 18;
    pub(crate) const PLUGIN_AUTH: u32 = 1 << 19;
    pub(crate) const CONNECT_ATTRS: u32 = 1 << 20;
    pub(crate) const PLUGIN_AUTH_LENENC_DATA: u32 = 1 << 21;
    pub(crate) const SESSION_TRACK: u32 = 1 << 23;
    pub(crate) const DEPRECATE_EOF: u32 = 1 << 24;
    pub(crate) const QUERY_ATTRIBUTES: u32 = 1 << 27;

    /// What the gateway never offers nor asks for: LOCAL_FILES (a server
    /// could read the caller's files), MULTI_STATEMENTS (one decision per
    /// statement), COMPRESS, QUERY_ATTRIBUTES (text the analysis would not
    /// see), CONNECT_ATTRS (the caller's are not passed on), SESSION_TRACK
    /// and DEPRECATE_EOF (one result shape for every server).
    pub(crate) const NEVER: u32 = LOCAL_FILES
        | MULTI_STATEMENTS
        | COMPRESS
        | QUERY_ATTRIBUTES
        | CONNECT_ATTRS
        | SESSION_TRACK
        | DEPRECATE_EOF;

    /// What the gateway offers callers and asks of servers.
    pub(crate) const OFFERED: u32 = LONG_PASSWORD
        | FOUND_ROWS
        | LONG_FLAG
        | CONNECT_WITH_DB
        | PROTOCOL_41
        | INTERACTIVE
        | TRANSACTIONS
        | SECURE_CONNECTION
        | MULTI_RESULTS
        | PS_MULTI_RESULTS
        | PLUGIN_AUTH
        | PLUGIN_AUTH_LENENC_DATA;
}

/// Server status flags (`SERVER_*`) the gateway reads.
pub(crate) mod status {
    /// Another result follows this one.
    pub(crate) const MORE_RESULTS_EXISTS: u16 = 0x0008;
    /// The session's `sql_mode` has NO_BACKSLASH_ESCAPES.
    pub(crate) const NO_BACKSLASH_ESCAPES: u16 = 0x0200;
}

/// Why a packet could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The socket failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The peer closed the connection.
    #[error("the connection was closed")]
    Closed,
    /// A message longer than the gateway accepts.
    #[error("a message of more than {0} bytes")]
    TooLong(usize),
}

/// Reads packets from one side, with its own buffer.
pub(crate) struct PacketReader {
    buf: BytesMut,
    max: usize,
}

impl PacketReader {
    /// A reader accepting messages up to `max` bytes.
    pub(crate) fn new(max: usize) -> Self {
        Self {
            buf: BytesMut::with_capacity(16 * 1024),
            max,
        }
    }

    /// Accepts messages up to `max` bytes from now on.
    pub(crate) fn set_max(&mut self, max: usize) {
        self.max = max;
    }

    /// One whole frame (header and payload) when the buffer holds it.
    pub(crate) fn frame(&mut self) -> Option<BytesMut> {
        let len = frame_len(&self.buf)?;
        (self.buf.len() >= HEADER + len).then(|| self.buf.split_to(HEADER + len))
    }

    /// Reads more bytes: `Closed` at end of input.
    pub(crate) async fn fill<R: AsyncRead + Unpin>(&mut self, r: &mut R) -> Result<(), FrameError> {
        if self.buf.capacity() - self.buf.len() < 8 * 1024 {
            self.buf.reserve(16 * 1024);
        }
        match r.read_buf(&mut self.buf).await? {
            0 => Err(FrameError::Closed),
            _ => Ok(()),
        }
    }

    /// The next message: its last packet's sequence number (what an answer
    /// follows) and the payload joined across continuation packets.
    pub(crate) async fn message<R: AsyncRead + Unpin>(
        &mut self,
        r: &mut R,
    ) -> Result<(u8, Bytes), FrameError> {
        let mut joined: Option<BytesMut> = None;
        loop {
            if let Some(len) = frame_len(&self.buf) {
                let so_far = joined.as_ref().map_or(0, |j| j.len());
                if so_far + len > self.max {
                    return Err(FrameError::TooLong(self.max));
                }
            }
            let Some(mut frame) = self.frame() else {
                self.fill(r).await?;
                continue;
            };
            // The last packet's number: an answer follows it.
            let seq = frame[3];
            frame.advance(HEADER);
            let more = frame.len() == MAX_PAYLOAD;
            let payload = match joined.take() {
                None => frame,
                Some(mut j) => {
                    j.extend_from_slice(&frame);
                    j
                }
            };
            if !more {
                return Ok((seq, payload.freeze()));
            }
            joined = Some(payload);
        }
    }
}

/// Reads one packet without reading a byte past it: the first packet of a
/// connection, which may be an SSLRequest that the client follows at once
/// with its TLS ClientHello (which must be left for the TLS handshake).
pub(crate) async fn read_exact_packet<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
) -> Result<(u8, Bytes), FrameError> {
    let mut header = [0u8; HEADER];
    match r.read_exact(&mut header).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(e.into()),
    }
    let len = frame_len(&header).unwrap_or(0);
    if len > max || len == MAX_PAYLOAD {
        return Err(FrameError::TooLong(max));
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload).await?;
    Ok((header[3], Bytes::from(payload)))
}

/// The payload length a buffer's first header announces.
fn frame_len(buf: &[u8]) -> Option<usize> {
    (buf.len() >= HEADER)
        .then(|| buf[0] as usize | (buf[1] as usize) << 8 | (buf[2] as usize) << 16)
}

/// Appends `payload` as packets from sequence number `seq` on, split where
/// it is too long for one; returns the next sequence number.
pub(crate) fn put_message(out: &mut BytesMut, mut seq: u8, payload: &[u8]) -> u8 {
    let mut rest = payload;
    loop {
        let n = rest.len().min(MAX_PAYLOAD);
        out.reserve(HEADER + n);
        out.put_uint_le(n as u64, 3);
        out.put_u8(seq);
        out.extend_from_slice(&rest[..n]);
        seq = seq.wrapping_add(1);
        rest = &rest[n..];
        if n < MAX_PAYLOAD {
            return seq;
        }
    }
}

/// Writes `payload` as one message from sequence number `seq`; returns the
/// next sequence number.
pub(crate) async fn write_message<W: AsyncWrite + Unpin>(
    w: &mut W,
    seq: u8,
    payload: &[u8],
) -> std::io::Result<u8> {
    let mut out = BytesMut::with_capacity(HEADER + payload.len());
    let next = put_message(&mut out, seq, payload);
    w.write_all(&out).await?;
    w.flush().await?;
    Ok(next)
}
