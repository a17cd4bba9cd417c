//! Poisons: what goes to the backend in place of a refused message. Each
//! fails at parse time and carries nothing of the statement, so the backend
//! aborts exactly as for a failed statement and answers the rest in order.

use crate::codec::write::{begin, close, finish, put_cstr, query};
use bytes::{BufMut, BytesMut};

/// The text sent to the backend in place of a refused statement: a comment
/// that says what happened, then a lone operator, a certain syntax error.
const POISON_SQL: &str = "/* gatehouse refused this statement by policy */ !";
/// What the names of the gateway's own statements and portals begin with;
/// a client's Parse or Bind of such a name is refused, so none of them can
/// exist on the server but the gateway's.
pub(crate) const RESERVED_PREFIX: &str = "gatehouse ";
/// A statement that never exists, for refused Binds.
const POISON_STATEMENT: &str = "gatehouse refused statement";
/// A portal that never exists, for refused Executes.
const POISON_PORTAL: &str = "gatehouse refused portal";

/// A Query carrying the poison text.
pub(crate) fn poison_query() -> BytesMut {
    let mut out = BytesMut::with_capacity(64);
    query(&mut out, POISON_SQL);
    out
}

/// A Parse of the poison text under the client's statement name.
pub(crate) fn poison_parse(name: &str) -> BytesMut {
    let mut out = BytesMut::with_capacity(64 + name.len());
    let start = begin(&mut out, b'P');
    put_cstr(&mut out, name);
    put_cstr(&mut out, POISON_SQL);
    out.put_i16(0);
    finish(&mut out, start);
    out
}

/// A Bind of a statement that does not exist, and that would fail even if
/// it did: two parameter formats for no parameters.
pub(crate) fn poison_bind() -> BytesMut {
    let mut out = BytesMut::with_capacity(64);
    let start = begin(&mut out, b'B');
    put_cstr(&mut out, "");
    put_cstr(&mut out, POISON_STATEMENT);
    out.put_i16(2); // parameter format codes
    out.put_i16(0);
    out.put_i16(0);
    out.put_i16(0); // parameters
    out.put_i16(0); // result format codes
    finish(&mut out, start);
    out
}

/// A Close of the poison portal (a client's cursor may have taken the
/// name), then an Execute of it, which fails: the portal does not exist.
pub(crate) fn poison_execute() -> BytesMut {
    let mut out = BytesMut::with_capacity(80);
    close(&mut out, b'P', POISON_PORTAL);
    let start = begin(&mut out, b'E');
    put_cstr(&mut out, POISON_PORTAL);
    out.put_i32(0);
    finish(&mut out, start);
    out
}

/// A FunctionCall of OID 0, which does not exist.
pub(crate) fn poison_function_call() -> BytesMut {
    let mut out = BytesMut::with_capacity(16);
    let start = begin(&mut out, b'F');
    out.put_i32(0); // function oid
    out.put_i16(0); // argument format codes
    out.put_i16(0); // arguments
    out.put_i16(0); // result format
    finish(&mut out, start);
    out
}
