//! Messages in the backend's voice: those the gateway writes to clients, and
//! those it reads from the backend during login and to record outcomes.

use super::write::{begin, finish, put_cstr};
use super::{CodecError, Cursor};
use bytes::{BufMut, BytesMut};

/// An ErrorResponse (or NoticeResponse) to send to a client.
#[derive(Debug, Clone)]
pub struct ErrorNotice<'a> {
    /// `ERROR`, `FATAL`, `NOTICE`…
    pub severity: &'a str,
    /// SQLSTATE.
    pub code: &'a str,
    /// Primary message.
    pub message: &'a str,
    /// Optional detail.
    pub detail: Option<&'a str>,
    /// Optional hint: what to do next.
    pub hint: Option<&'a str>,
}

/// Encodes an ErrorResponse.
pub fn error_response(out: &mut BytesMut, e: &ErrorNotice<'_>) {
    error_or_notice(out, b'E', e);
}

/// Encodes a NoticeResponse.
pub fn notice_response(out: &mut BytesMut, e: &ErrorNotice<'_>) {
    error_or_notice(out, b'N', e);
}

fn error_or_notice(out: &mut BytesMut, ty: u8, e: &ErrorNotice<'_>) {
    let start = begin(out, ty);
    for (field, value) in [
        (b'S', Some(e.severity)),
        (b'V', Some(e.severity)),
        (b'C', Some(e.code)),
        (b'M', Some(e.message)),
        (b'D', e.detail),
        (b'H', e.hint),
    ] {
        if let Some(v) = value {
            out.put_u8(field);
            put_cstr(out, v);
        }
    }
    out.put_u8(0);
    finish(out, start);
}

/// Encodes AuthenticationCleartextPassword.
pub fn auth_cleartext_password(out: &mut BytesMut) {
    let start = begin(out, b'R');
    out.put_i32(3);
    finish(out, start);
}

/// Encodes AuthenticationOk.
pub fn auth_ok(out: &mut BytesMut) {
    let start = begin(out, b'R');
    out.put_i32(0);
    finish(out, start);
}

/// Encodes BackendKeyData.
pub fn backend_key_data(out: &mut BytesMut, pid: i32, secret: i32) {
    let start = begin(out, b'K');
    out.put_i32(pid);
    out.put_i32(secret);
    finish(out, start);
}

/// Encodes NegotiateProtocolVersion: the newest minor version supported and
/// the protocol options (`_pq_.*`) not recognised.
pub fn negotiate_protocol_version(out: &mut BytesMut, minor: i32, unrecognised: &[&str]) {
    let start = begin(out, b'v');
    out.put_i32(minor);
    out.put_i32(unrecognised.len() as i32);
    for o in unrecognised {
        put_cstr(out, o);
    }
    finish(out, start);
}

/// Appends a raw message (type and body) to `out`.
pub fn raw(out: &mut BytesMut, ty: u8, body: &[u8]) {
    out.put_u8(ty);
    out.put_i32(body.len() as i32 + 4);
    out.put_slice(body);
}

/// An Authentication request from the backend.
#[derive(Debug, PartialEq, Eq)]
pub enum Authentication {
    /// Login succeeded.
    Ok,
    /// Send the password in clear.
    CleartextPassword,
    /// Send the MD5 hash with this salt.
    Md5Password {
        /// Salt.
        salt: [u8; 4],
    },
    /// Start SASL with one of these mechanisms.
    Sasl {
        /// Mechanism names.
        mechanisms: Vec<String>,
    },
    /// SASL challenge data.
    SaslContinue(Vec<u8>),
    /// SASL final data.
    SaslFinal(Vec<u8>),
    /// A method the gateway does not implement (Kerberos, GSS, SSPI).
    Unsupported(i32),
}

/// Decodes the body of an Authentication ('R') message.
pub fn parse_authentication(body: &[u8]) -> Result<Authentication, CodecError> {
    let mut c = Cursor::new(body);
    Ok(match c.i32("authentication code")? {
        0 => Authentication::Ok,
        3 => Authentication::CleartextPassword,
        5 => {
            let s = c.bytes(4, "md5 salt")?;
            Authentication::Md5Password {
                salt: [s[0], s[1], s[2], s[3]],
            }
        }
        10 => {
            let mut mechanisms = Vec::new();
            loop {
                let m = c.cstr("sasl mechanism")?;
                if m.is_empty() {
                    break;
                }
                mechanisms.push(m.to_string());
            }
            Authentication::Sasl { mechanisms }
        }
        11 => Authentication::SaslContinue(c.remaining().to_vec()),
        12 => Authentication::SaslFinal(c.remaining().to_vec()),
        other => Authentication::Unsupported(other),
    })
}

/// Fields of an ErrorResponse or NoticeResponse read from the backend.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ErrorFields {
    /// Non-localised severity (`V`), else `S`.
    pub severity: String,
    /// SQLSTATE (`C`).
    pub code: String,
    /// Primary message (`M`).
    pub message: String,
}

/// Decodes the fields the gateway records from an ErrorResponse body.
pub fn parse_error_fields(body: &[u8]) -> Result<ErrorFields, CodecError> {
    let mut c = Cursor::new(body);
    let mut f = ErrorFields::default();
    loop {
        let field = c.u8("error field type")?;
        if field == 0 {
            break;
        }
        let value = String::from_utf8_lossy(c.cstr_bytes("error field")?);
        match field {
            b'V' => f.severity = value.into_owned(),
            b'S' if f.severity.is_empty() => f.severity = value.into_owned(),
            b'C' => f.code = value.into_owned(),
            b'M' => f.message = value.into_owned(),
            _ => {}
        }
    }
    Ok(f)
}

/// Decodes BackendKeyData: (pid, secret).
pub fn parse_backend_key_data(body: &[u8]) -> Result<(i32, i32), CodecError> {
    let mut c = Cursor::new(body);
    Ok((c.i32("backend pid")?, c.i32("backend secret")?))
}

/// Decodes a CommandComplete tag.
pub fn parse_command_tag(body: &[u8]) -> Result<&str, CodecError> {
    Cursor::new(body).cstr("command tag")
}

/// Rows returned or affected, from a command tag such as `INSERT 0 5` or `SELECT 3`.
pub fn rows_from_tag(tag: &str) -> Option<u64> {
    let mut words = tag.split(' ');
    let verb = words.next()?;
    match verb {
        "SELECT" | "INSERT" | "UPDATE" | "DELETE" | "MERGE" | "COPY" | "FETCH" | "MOVE" => {
            tag.rsplit(' ').next()?.parse().ok()
        }
        _ => None,
    }
}
