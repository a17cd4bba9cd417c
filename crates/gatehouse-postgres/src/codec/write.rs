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
