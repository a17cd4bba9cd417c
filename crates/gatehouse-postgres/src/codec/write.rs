//! Writing messages: the few helpers every encoder shares.

use bytes::{BufMut, BytesMut};

/// Appends a NUL-terminated string.
pub(crate) fn put_cstr(out: &mut BytesMut, s: &str) {
    out.put_slice(s.as_bytes());
    out.put_u8(0);
}

/// Starts a typed message (`type`, then a length placeholder); returns where
/// its length word is, for [`finish`].
pub(crate) fn begin(out: &mut BytesMut, ty: u8) -> usize {
    out.put_u8(ty);
    let start = out.len();
    out.put_i32(0);
    start
}

/// Writes the length of the message whose length word is at `start`.
pub(crate) fn finish(out: &mut BytesMut, start: usize) {
    let len = (out.len() - start) as i32;
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

/// Appends a message of type `ty` whose body is `body` as it is.
pub(crate) fn message(out: &mut BytesMut, ty: u8, body: &[u8]) {
    let start = begin(out, ty);
    out.put_slice(body);
    finish(out, start);
}

/// Appends a simple Query of `sql`.
pub(crate) fn query(out: &mut BytesMut, sql: &str) {
    let start = begin(out, super::msg::frontend::QUERY);
    put_cstr(out, sql);
    finish(out, start);
}

/// Appends a Close of the statement (`kind` `S`) or portal (`P`) `name`.
pub(crate) fn close(out: &mut BytesMut, kind: u8, name: &str) {
    let start = begin(out, super::msg::frontend::CLOSE);
    out.put_u8(kind);
    put_cstr(out, name);
    finish(out, start);
}
