//! Untyped packets a client may send first: SSLRequest, GSSENCRequest,
//! CancelRequest and StartupMessage.

use super::write::{finish, put_cstr};
use super::{CodecError, Cursor};
use bytes::{BufMut, BytesMut};

/// Request code of an SSLRequest.
pub const SSL_REQUEST: i32 = 80_877_103;
/// Request code of a GSSENCRequest.
pub const GSSENC_REQUEST: i32 = 80_877_104;
/// Request code of a CancelRequest.
pub const CANCEL_REQUEST: i32 = 80_877_102;
/// Protocol 3.0 as a version number.
pub const PROTOCOL_3_0: i32 = 196_608;
/// Largest startup packet accepted (PostgreSQL uses the same limit).
pub const MAX_STARTUP_LEN: usize = 10_000;

/// A decoded startup-phase packet.
#[derive(Debug, PartialEq, Eq)]
pub enum StartupPacket {
    /// The client asks for TLS.
    SslRequest,
    /// The client asks for GSSAPI encryption (refused).
    GssEncRequest,
    /// The client asks to cancel a running query.
    Cancel {
        /// Process id from BackendKeyData.
        pid: i32,
        /// Secret key from BackendKeyData.
        secret: i32,
    },
    /// A StartupMessage.
    Startup {
        /// Requested minor protocol version (major is always 3).
        minor: u16,
        /// Parameters in the order sent.
        params: Vec<(String, String)>,
    },
}

/// Decodes the body of a startup packet (everything after the length word).
pub fn parse_startup_packet(body: &[u8]) -> Result<StartupPacket, CodecError> {
    let mut c = Cursor::new(body);
    let code = c.i32("request code")?;
    match code {
        SSL_REQUEST => Ok(StartupPacket::SslRequest),
        GSSENC_REQUEST => Ok(StartupPacket::GssEncRequest),
        CANCEL_REQUEST => {
            let pid = c.i32("cancel pid")?;
            let secret = c.i32("cancel secret")?;
            Ok(StartupPacket::Cancel { pid, secret })
        }
        v if v >> 16 == 3 => {
            let mut params = Vec::new();
            loop {
                let key = c.cstr("parameter name")?;
                if key.is_empty() {
                    break;
                }
                let value = c.cstr("parameter value")?;
                params.push((key.to_string(), value.to_string()));
            }
            Ok(StartupPacket::Startup {
                minor: (v & 0xffff) as u16,
                params,
            })
        }
        _ => Err(CodecError::Invalid(
            "protocol version (only 3.x is supported)",
        )),
    }
}

/// Encodes a protocol 3.0 StartupMessage.
pub fn startup_message<'a>(
    out: &mut BytesMut,
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
) {
    let start = out.len();
    out.put_i32(0);
    out.put_i32(PROTOCOL_3_0);
    for (k, v) in params {
        put_cstr(out, k);
        put_cstr(out, v);
    }
    out.put_u8(0);
    finish(out, start);
}

/// Encodes an SSLRequest.
pub fn ssl_request(out: &mut BytesMut) {
    out.put_i32(8);
    out.put_i32(SSL_REQUEST);
}

/// Encodes a CancelRequest.
pub fn cancel_request(out: &mut BytesMut, pid: i32, secret: i32) {
    out.put_i32(16);
    out.put_i32(CANCEL_REQUEST);
    out.put_i32(pid);
    out.put_i32(secret);
}
