//! The protocol's basic types: fixed little-endian integers, length-encoded
//! integers and strings, NUL-terminated strings. A [`Cursor`] reads them
//! from a payload and answers `None` past its end.

use bytes::BufMut;

/// Reads a payload front to back.
#[derive(Clone, Copy)]
pub(crate) struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(payload: &'a [u8]) -> Self {
        Self { rest: payload }
    }

    /// What is left.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.rest
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next `n` bytes.
    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.rest.len() < n {
            return None;
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Some(head)
    }

    pub(crate) fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    pub(crate) fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }

    pub(crate) fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A fixed-size little-endian integer of `n` bytes (at most 8).
    pub(crate) fn uint(&mut self, n: usize) -> Option<u64> {
        let b = self.take(n.min(8))?;
        Some(b.iter().rev().fold(0, |acc, &x| acc << 8 | u64::from(x)))
    }

    /// A length-encoded integer; `None` for the NULL marker (0xFB) or the
    /// reserved 0xFF.
    pub(crate) fn lenenc(&mut self) -> Option<u64> {
        match self.u8()? {
            n @ 0..=0xFA => Some(u64::from(n)),
            0xFC => self.uint(2),
            0xFD => self.uint(3),
            0xFE => self.uint(8),
            _ => None,
        }
    }

    /// A length-encoded string.
    pub(crate) fn lenenc_bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.lenenc()?).ok()?;
        self.take(n)
    }

    /// A text-row value: `None` inside for SQL NULL (0xFB).
    pub(crate) fn row_value(&mut self) -> Option<Option<&'a [u8]>> {
        if self.rest.first() == Some(&0xFB) {
            self.rest = &self.rest[1..];
            return Some(None);
        }
        self.lenenc_bytes().map(Some)
    }

    /// A NUL-terminated string (without its NUL).
    pub(crate) fn nul_str(&mut self) -> Option<&'a [u8]> {
        let end = self.rest.iter().position(|&b| b == 0)?;
        let s = &self.rest[..end];
        self.rest = &self.rest[end + 1..];
        Some(s)
    }

    /// The rest up to a NUL, or to the end when there is none.
    pub(crate) fn nul_str_or_rest(&mut self) -> &'a [u8] {
        match self.rest.iter().position(|&b| b == 0) {
            Some(end) => {
                let s = &self.rest[..end];
                self.rest = &self.rest[end + 1..];
                s
            }
            None => std::mem::take(&mut self.rest),
        }
    }
}

/// Appends a length-encoded integer.
pub(crate) fn put_lenenc(out: &mut impl BufMut, n: u64) {
    match n {
        0..=0xFA => out.put_u8(n as u8),
        0xFB..=0xFFFF => {
            out.put_u8(0xFC);
            out.put_u16_le(n as u16);
        }
        0x1_0000..=0xFF_FFFF => {
            out.put_u8(0xFD);
            out.put_uint_le(n, 3);
        }
        _ => {
            out.put_u8(0xFE);
            out.put_u64_le(n);
        }
    }
}

/// Appends a length-encoded string.
pub(crate) fn put_lenenc_bytes(out: &mut impl BufMut, s: &[u8]) {
    put_lenenc(out, s.len() as u64);
    out.put_slice(s);
}
