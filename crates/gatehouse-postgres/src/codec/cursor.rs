use super::CodecError;

/// A bounds-checked reader over a message body.
#[derive(Debug)]
pub struct Cursor<'a> {
    buf: &'a [u8],
}

impl<'a> Cursor<'a> {
    /// Reads from `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> &'a [u8] {
        self.buf
    }

    /// Takes `n` bytes.
    pub fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], CodecError> {
        if self.buf.len() < n {
            return Err(CodecError::Truncated(what));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// Takes one byte.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, CodecError> {
        Ok(self.bytes(1, what)?[0])
    }

    /// Takes a big-endian i16.
    pub fn i16(&mut self, what: &'static str) -> Result<i16, CodecError> {
        let b = self.bytes(2, what)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    /// Takes a big-endian i32.
    pub fn i32(&mut self, what: &'static str) -> Result<i32, CodecError> {
        let b = self.bytes(4, what)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Takes a non-negative i16 count.
    pub fn count16(&mut self, what: &'static str) -> Result<usize, CodecError> {
        let n = self.i16(what)?;
        usize::try_from(n).map_err(|_| CodecError::Invalid(what))
    }

    /// Takes a NUL-terminated byte string (without the NUL).
    pub fn cstr_bytes(&mut self, what: &'static str) -> Result<&'a [u8], CodecError> {
        let end = self
            .buf
            .iter()
            .position(|&b| b == 0)
            .ok_or(CodecError::Unterminated(what))?;
        let s = &self.buf[..end];
        self.buf = &self.buf[end + 1..];
        Ok(s)
    }

    /// Takes a NUL-terminated UTF-8 string.
    pub fn cstr(&mut self, what: &'static str) -> Result<&'a str, CodecError> {
        std::str::from_utf8(self.cstr_bytes(what)?).map_err(|_| CodecError::NotUtf8(what))
    }
}
