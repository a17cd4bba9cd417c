//! One stream type for both legs: plain TCP, or TLS as server (client leg) or
//! as client (backend leg).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A connection to a client or a backend.
pub enum PgStream {
    /// Unencrypted TCP.
    Plain(TcpStream),
    /// TLS terminated by the gateway (client leg).
    ServerTls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    /// TLS originated by the gateway (backend leg).
    ClientTls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl PgStream {
    /// Whether the stream is encrypted.
    pub fn is_tls(&self) -> bool {
        !matches!(self, Self::Plain(_))
    }
}

macro_rules! delegate {
    ($self:ident, $s:ident => $e:expr) => {
        match $self.get_mut() {
            PgStream::Plain($s) => {
                let $s = Pin::new($s);
                $e
            }
            PgStream::ServerTls($s) => {
                let $s = Pin::new(&mut **$s);
                $e
            }
            PgStream::ClientTls($s) => {
                let $s = Pin::new(&mut **$s);
                $e
            }
        }
    };
}

impl AsyncRead for PgStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_read(cx, buf))
    }
}

impl AsyncWrite for PgStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, s => s.poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_shutdown(cx))
    }
}
