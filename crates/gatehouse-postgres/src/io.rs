//! Reading whole typed messages during the login phases (not the relay).

use crate::codec::FrameError;
use bytes::{Buf, BytesMut};
use std::io;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Reads one typed message into `(type, body)`, buffering in `buf`. Bytes past
/// the message stay in `buf`. Returns `Ok(None)` on a clean EOF between messages.
pub(crate) async fn read_message<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut BytesMut,
    max_len: u32,
) -> io::Result<Option<(u8, BytesMut)>> {
    loop {
        if buf.len() >= 5 {
            let ty = buf[0];
            let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]);
            if len < 4 {
                return Err(invalid(FrameError::BadLength {
                    ty: ty as char,
                    len,
                }));
            }
            if len > max_len {
                return Err(invalid(FrameError::TooLarge {
                    ty: ty as char,
                    len,
                    max: max_len,
                }));
            }
            let total = 1 + len as usize;
            if buf.len() >= total {
                let mut msg = buf.split_to(total);
                msg.advance(5);
                return Ok(Some((ty, msg)));
            }
            buf.reserve(total - buf.len());
        } else {
            buf.reserve(4096);
        }
        if r.read_buf(buf).await? == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed in the middle of a message",
                ))
            };
        }
    }
}

pub(crate) fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// Writes all of `bytes` and flushes. Over TLS a stream buffers like a
/// `BufWriter`: rustls keeps what the socket did not take at that moment, and
/// only a later write or a flush sends it. Without the flush, the last bytes
/// of a result (CommandComplete, ReadyForQuery) could stay in the gateway
/// while the client waits for them: seen as a hang of a 220 MB result over
/// TLS in a test run. On plain TCP the flush costs nothing.
pub(crate) async fn send<W: AsyncWrite + Unpin + ?Sized>(
    w: &mut W,
    bytes: &[u8],
) -> io::Result<()> {
    w.write_all(bytes).await?;
    w.flush().await
}
