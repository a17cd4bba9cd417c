//! The connection phase: the server's greeting (HandshakeV10), the client's
//! answer (HandshakeResponse41, or the short SSLRequest before TLS), and
//! the authentication exchanges that follow (AuthSwitchRequest,
//! AuthMoreData).

use super::caps;
use super::wire::{put_lenenc_bytes, Cursor};
use bytes::BufMut;

/// The greeting byte of HandshakeV10.
const PROTOCOL_VERSION: u8 = 10;
/// The marker of an AuthSwitchRequest (and of EOF, by length).
pub(crate) const AUTH_SWITCH: u8 = 0xFE;
/// The marker of AuthMoreData.
pub(crate) const AUTH_MORE_DATA: u8 = 0x01;

/// A server's greeting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Greeting {
    pub(crate) server_version: String,
    pub(crate) connection_id: u32,
    /// The authentication challenge (20 bytes for the usual plugins).
    pub(crate) scramble: Vec<u8>,
    pub(crate) capabilities: u32,
    pub(crate) collation: u8,
    pub(crate) status: u16,
    /// The plugin the scramble is for.
    pub(crate) plugin: String,
}

impl Greeting {
    /// Reads a greeting; `None` when it is not a HandshakeV10 the gateway
    /// can use (protocol 4.1 with plugin authentication).
    pub(crate) fn parse(payload: &[u8]) -> Option<Self> {
        let mut c = Cursor::new(payload);
        if c.u8()? != PROTOCOL_VERSION {
            return None;
        }
        let server_version = String::from_utf8_lossy(c.nul_str()?).into_owned();
        let connection_id = c.u32()?;
        let mut scramble = c.take(8)?.to_vec();
        c.u8()?;
        let low = u32::from(c.u16()?);
        let collation = c.u8()?;
        let status = c.u16()?;
        let high = u32::from(c.u16()?);
        let capabilities = low | high << 16;
        let data_len = usize::from(c.u8()?);
        c.take(10)?;
        if capabilities & caps::SECURE_CONNECTION != 0 {
            let n = data_len.saturating_sub(8).max(13);
            let part = c.take(n)?;
            // The second part ends in a NUL that is not part of the challenge.
            let part = part.strip_suffix(&[0]).unwrap_or(part);
            scramble.extend_from_slice(part);
        }
        let plugin = if capabilities & caps::PLUGIN_AUTH != 0 {
            String::from_utf8_lossy(c.nul_str_or_rest()).into_owned()
        } else {
            "mysql_native_password".into()
        };
        Some(Self {
            server_version,
            connection_id,
            scramble,
            capabilities,
            collation,
            status,
            plugin,
        })
    }

    /// The greeting as a server sends it.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(96);
        out.put_u8(PROTOCOL_VERSION);
        out.put_slice(self.server_version.as_bytes());
        out.put_u8(0);
        out.put_u32_le(self.connection_id);
        let (first, second) = self.scramble.split_at(self.scramble.len().min(8));
        out.put_slice(first);
        out.put_u8(0);
        out.put_u16_le(self.capabilities as u16);
        out.put_u8(self.collation);
        out.put_u16_le(self.status);
        out.put_u16_le((self.capabilities >> 16) as u16);
        out.put_u8((self.scramble.len() + 1) as u8);
        out.put_slice(&[0; 10]);
        out.put_slice(second);
        out.put_u8(0);
        out.put_slice(self.plugin.as_bytes());
        out.put_u8(0);
        out
    }
}

/// A client's answer to the greeting. Its `Debug` leaves out `auth`,
/// which may be a token or a password.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct HandshakeResponse {
    pub(crate) capabilities: u32,
    pub(crate) max_packet: u32,
    pub(crate) collation: u8,
    pub(crate) user: Vec<u8>,
    pub(crate) auth: Vec<u8>,
    pub(crate) database: Option<Vec<u8>>,
    pub(crate) plugin: Option<String>,
}

impl std::fmt::Debug for HandshakeResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandshakeResponse")
            .field("capabilities", &self.capabilities)
            .field("collation", &self.collation)
            .field("user", &String::from_utf8_lossy(&self.user))
            .field("auth", &format_args!("<{} bytes>", self.auth.len()))
            .field(
                "database",
                &self.database.as_deref().map(String::from_utf8_lossy),
            )
            .field("plugin", &self.plugin)
            .finish()
    }
}

/// An SSLRequest: the first 32 bytes of a response, with the SSL flag.
pub(crate) const SSL_REQUEST_LEN: usize = 32;

/// The capabilities of an SSLRequest, when `payload` is one.
pub(crate) fn ssl_request(payload: &[u8]) -> Option<u32> {
    let caps_ = Cursor::new(payload).u32()?;
    (payload.len() == SSL_REQUEST_LEN && caps_ & caps::SSL != 0).then_some(caps_)
}

impl HandshakeResponse {
    /// Reads a HandshakeResponse41; `None` when malformed or pre-4.1.
    pub(crate) fn parse(payload: &[u8]) -> Option<Self> {
        let mut c = Cursor::new(payload);
        let capabilities = c.u32()?;
        if capabilities & caps::PROTOCOL_41 == 0 {
            return None;
        }
        let max_packet = c.u32()?;
        let collation = c.u8()?;
        c.take(23)?;
        let user = c.nul_str()?.to_vec();
        let auth = if capabilities & caps::PLUGIN_AUTH_LENENC_DATA != 0 {
            c.lenenc_bytes()?.to_vec()
        } else if capabilities & caps::SECURE_CONNECTION != 0 {
            let n = usize::from(c.u8()?);
            c.take(n)?.to_vec()
        } else {
            c.nul_str()?.to_vec()
        };
        let database = if capabilities & caps::CONNECT_WITH_DB != 0 && !c.is_empty() {
            Some(c.nul_str_or_rest().to_vec())
        } else {
            None
        };
        let plugin = if capabilities & caps::PLUGIN_AUTH != 0 && !c.is_empty() {
            Some(String::from_utf8_lossy(c.nul_str_or_rest()).into_owned())
        } else {
            None
        };
        // Connection attributes (CONNECT_ATTRS) are not read: the backend
        // gets none of the caller's.
        Some(Self {
            capabilities,
            max_packet,
            collation,
            user,
            auth,
            database,
            plugin,
        })
    }

    /// The response as a client sends it (the SSLRequest is its first 32 bytes).
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = self.ssl_request();
        out.put_slice(&self.user);
        out.put_u8(0);
        put_lenenc_bytes(&mut out, &self.auth);
        if let Some(db) = &self.database {
            out.put_slice(db);
            out.put_u8(0);
        }
        if let Some(p) = &self.plugin {
            out.put_slice(p.as_bytes());
            out.put_u8(0);
        }
        out
    }

    /// The SSLRequest that goes before it over TLS.
    pub(crate) fn ssl_request(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        out.put_u32_le(self.capabilities);
        out.put_u32_le(self.max_packet);
        out.put_u8(self.collation);
        out.put_slice(&[0; 23]);
        out
    }
}

/// An AuthSwitchRequest asking the client to use `plugin` with `data`.
pub(crate) fn auth_switch(plugin: &str, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + plugin.len() + data.len());
    out.put_u8(AUTH_SWITCH);
    out.put_slice(plugin.as_bytes());
    out.put_u8(0);
    out.put_slice(data);
    out
}

/// Reads an AuthSwitchRequest: the plugin and its challenge.
pub(crate) fn parse_auth_switch(payload: &[u8]) -> Option<(String, Vec<u8>)> {
    let mut c = Cursor::new(payload);
    (c.u8()? == AUTH_SWITCH).then_some(())?;
    let plugin = String::from_utf8_lossy(c.nul_str_or_rest()).into_owned();
    // Not trimmed: ed25519's 32-byte challenge may end in a zero byte; the
    // 20-byte scrambles take their first 20 (native's carries a NUL after).
    Some((plugin, c.rest().to_vec()))
}
