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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A pipe that takes 1 KiB at a time, like a client's full socket: most
    /// of a 16 KiB message waits in rustls when the write returns, and must
    /// still arrive though nothing is written after it.
    #[tokio::test]
    async fn bytes_sent_over_tls_arrive_though_the_socket_was_full() {
        let rcgen::CertifiedKey { cert, key_pair } =
            rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let server =
            crate::server_config(cert.pem().as_bytes(), key_pair.serialize_pem().as_bytes())
                .unwrap();
        let client = crate::client_config_unverified().unwrap();
        let (a, b) = tokio::io::duplex(1024);
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let (server, client) = tokio::join!(
            tokio_rustls::TlsAcceptor::from(server).accept(a),
            tokio_rustls::TlsConnector::from(client).connect(name, b)
        );
        let (mut server, mut client) = (server.unwrap(), client.unwrap());
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let writer = tokio::spawn(async move {
            send(&mut server, &[7u8; 16 * 1024]).await.unwrap();
            // Nothing more is written; the stream stays open until the reader is done.
            let _ = done_rx.await;
        });
        // The reader starts late, as a busy client does.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut got = vec![0u8; 16 * 1024];
        tokio::time::timeout(Duration::from_secs(10), client.read_exact(&mut got))
            .await
            .expect("the message stayed in the sender's TLS buffer")
            .unwrap();
        assert!(got.iter().all(|&b| b == 7));
        let _ = done_tx.send(());
        writer.await.unwrap();
    }
}
