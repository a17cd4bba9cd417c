//! Messages in the frontend's voice: those clients send that the gateway
//! reads, and those the gateway sends to backends during login.

use super::write::{begin, finish, put_cstr};
use super::{CodecError, Cursor};
use bytes::{BufMut, BytesMut};

/// Decodes a PasswordMessage body: the password string.
pub fn parse_password(body: &[u8]) -> Result<&str, CodecError> {
    Cursor::new(body).cstr("password")
}

/// Decodes a Query body: the query string.
pub fn parse_query(body: &[u8]) -> Result<&str, CodecError> {
    Cursor::new(body).cstr("query string")
}

/// A decoded Parse message.
#[derive(Debug, PartialEq, Eq)]
pub struct Parse<'a> {
    /// Prepared statement name (empty: unnamed).
    pub name: &'a str,
    /// Statement text.
    pub query: &'a str,
}

/// Decodes a Parse body (parameter type OIDs are not needed and are skipped).
pub fn parse_parse(body: &[u8]) -> Result<Parse<'_>, CodecError> {
    let mut c = Cursor::new(body);
    let name = c.cstr("statement name")?;
    let query = c.cstr("query string")?;
    let n = c.count16("parameter type count")?;
    c.bytes(n * 4, "parameter types")?;
    Ok(Parse { name, query })
}

/// A bind parameter value.
#[derive(Debug, PartialEq, Eq)]
pub enum BindValue<'a> {
    /// SQL NULL.
    Null,
    /// A value in text format.
    Text(&'a [u8]),
    /// A value in binary format.
    Binary(&'a [u8]),
}

/// A decoded Bind message.
#[derive(Debug, PartialEq, Eq)]
pub struct Bind<'a> {
    /// Destination portal (empty: unnamed).
    pub portal: &'a str,
    /// Source prepared statement (empty: unnamed).
    pub statement: &'a str,
    /// Parameter values with their formats resolved.
    pub params: Vec<BindValue<'a>>,
    /// Result-column format codes, raw (big-endian i16 each).
    pub result_formats: &'a [u8],
}

/// Decodes a Bind body.
pub fn parse_bind(body: &[u8]) -> Result<Bind<'_>, CodecError> {
    let mut c = Cursor::new(body);
    let portal = c.cstr("portal name")?;
    let statement = c.cstr("statement name")?;
    let nformats = c.count16("parameter format count")?;
    let formats = c.bytes(nformats * 2, "parameter formats")?;
    let nparams = c.count16("parameter count")?;
    if nformats > 1 && nformats != nparams {
        return Err(CodecError::Invalid("parameter format count"));
    }
    let format_of = |i: usize| -> i16 {
        let j = if nformats == 1 { 0 } else { i };
        if nformats == 0 {
            0
        } else {
            i16::from_be_bytes([formats[2 * j], formats[2 * j + 1]])
        }
    };
    let mut params = Vec::with_capacity(nparams);
    for i in 0..nparams {
        let len = c.i32("parameter length")?;
        let value = if len == -1 {
            BindValue::Null
        } else {
            let len = usize::try_from(len).map_err(|_| CodecError::Invalid("parameter length"))?;
            let bytes = c.bytes(len, "parameter value")?;
            match format_of(i) {
                0 => BindValue::Text(bytes),
                1 => BindValue::Binary(bytes),
                _ => return Err(CodecError::Invalid("parameter format")),
            }
        };
        params.push(value);
    }
    let nresult = c.count16("result format count")?;
    let result_formats = c.bytes(nresult * 2, "result formats")?;
    Ok(Bind {
        portal,
        statement,
        params,
        result_formats,
    })
}

/// What a Describe asks about.
#[derive(Debug, PartialEq, Eq)]
pub enum DescribeTarget<'a> {
    /// A prepared statement.
    Statement(&'a str),
    /// A portal.
    Portal(&'a str),
}

/// Decodes a Describe body.
pub fn parse_describe(body: &[u8]) -> Result<DescribeTarget<'_>, CodecError> {
    let mut c = Cursor::new(body);
    let kind = c.u8("describe target")?;
    let name = c.cstr("describe name")?;
    match kind {
        b'S' => Ok(DescribeTarget::Statement(name)),
        b'P' => Ok(DescribeTarget::Portal(name)),
        _ => Err(CodecError::Invalid("describe target")),
    }
}

/// Decodes an Execute body: the portal name.
pub fn parse_execute(body: &[u8]) -> Result<&str, CodecError> {
    let mut c = Cursor::new(body);
    let portal = c.cstr("portal name")?;
    c.i32("row limit")?;
    Ok(portal)
}

/// What a Close message closes.
#[derive(Debug, PartialEq, Eq)]
pub enum CloseTarget<'a> {
    /// A prepared statement.
    Statement(&'a str),
    /// A portal.
    Portal(&'a str),
}

/// Decodes a Close body.
pub fn parse_close(body: &[u8]) -> Result<CloseTarget<'_>, CodecError> {
    let mut c = Cursor::new(body);
    let kind = c.u8("close kind")?;
    let name = c.cstr("close name")?;
    match kind {
        b'S' => Ok(CloseTarget::Statement(name)),
        b'P' => Ok(CloseTarget::Portal(name)),
        _ => Err(CodecError::Invalid("close kind")),
    }
}

/// Decodes a FunctionCall body: the function OID.
pub fn parse_function_call(body: &[u8]) -> Result<i32, CodecError> {
    Cursor::new(body).i32("function oid")
}

/// Encodes a PasswordMessage carrying a password or an MD5 hash.
pub fn password_message(out: &mut BytesMut, password: &[u8]) {
    let start = begin(out, b'p');
    out.put_slice(password);
    out.put_u8(0);
    finish(out, start);
}

/// Encodes SASLInitialResponse.
pub fn sasl_initial_response(out: &mut BytesMut, mechanism: &str, data: &[u8]) {
    let start = begin(out, b'p');
    put_cstr(out, mechanism);
    out.put_i32(data.len() as i32);
    out.put_slice(data);
    finish(out, start);
}

/// Encodes SASLResponse.
pub fn sasl_response(out: &mut BytesMut, data: &[u8]) {
    let start = begin(out, b'p');
    out.put_slice(data);
    finish(out, start);
}

/// Encodes Terminate.
pub fn terminate(out: &mut BytesMut) {
    out.put_u8(b'X');
    out.put_i32(4);
}
