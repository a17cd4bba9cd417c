//! The byte streams a session runs on: the caller's (TCP, or TLS the
//! gateway terminates) and the backend's (TCP, or TLS the gateway opens).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// One side's stream.
pub(crate) enum Wire {
    Plain(TcpStream),
    Accepted(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    Opened(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Wire {
    /// Whether it is encrypted.
    pub(crate) fn encrypted(&self) -> bool {
        !matches!(self, Self::Plain(_))
    }
}

impl AsyncRead for Wire {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Accepted(s) => Pin::new(&mut **s).poll_read(cx, buf),
            Self::Opened(s) => Pin::new(&mut **s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Wire {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Accepted(s) => Pin::new(&mut **s).poll_write(cx, buf),
            Self::Opened(s) => Pin::new(&mut **s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Accepted(s) => Pin::new(&mut **s).poll_flush(cx),
            Self::Opened(s) => Pin::new(&mut **s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Accepted(s) => Pin::new(&mut **s).poll_shutdown(cx),
            Self::Opened(s) => Pin::new(&mut **s).poll_shutdown(cx),
        }
    }
}
