//! A stream cut into the units its text is masked in: whole lines (up to
//! 4 KiB without a line end), and PEM blocks (`-----BEGIN` until
//! `-----END`, up to 64 KiB) whole, so a key's body is found with its
//! head. A value split across chunks, or typed a key at a time, is still
//! found; a unit is handed out once it is whole.

/// The longest run handed out as one unit without a line end.
pub const LINE_LIMIT: usize = 4096;
/// The longest PEM block held to be masked whole.
pub const BLOCK_LIMIT: usize = 64 * 1024;

/// One stream's bytes since its last whole unit.
#[derive(Debug, Default)]
pub struct Lines {
    pending: Vec<u8>,
    block: Option<Vec<u8>>,
    /// A carriage return ends a line too (what a terminal sends for Enter).
    cr_ends_line: bool,
}

impl Lines {
    /// A splitter; `cr_ends_line` for what a terminal's keyboard sends.
    pub fn new(cr_ends_line: bool) -> Self {
        Self {
            cr_ends_line,
            ..Self::default()
        }
    }

    /// Bytes held back, waiting for their unit to end.
    pub fn held(&self) -> usize {
        self.pending.len() + self.block.as_ref().map_or(0, Vec::len)
    }

    /// Takes `bytes`, handing each unit they complete to `unit`.
    pub fn feed(&mut self, bytes: &[u8], unit: &mut impl FnMut(&[u8])) {
        let mut pending = std::mem::take(&mut self.pending);
        pending.extend_from_slice(bytes);
        let mut start = 0;
        loop {
            let rest = &pending[start..];
            let line_end = if self.cr_ends_line {
                memchr::memchr2(b'\n', b'\r', rest)
            } else {
                memchr::memchr(b'\n', rest)
            };
            let end = match line_end {
                Some(nl) => nl + 1,
                None if rest.len() >= LINE_LIMIT => {
                    // No line end within the limit: cut before an
                    // incomplete character.
                    match std::str::from_utf8(&rest[..LINE_LIMIT]) {
                        Err(e) if e.error_len().is_none() && e.valid_up_to() > 0 => e.valid_up_to(),
                        _ => LINE_LIMIT,
                    }
                }
                None => break,
            };
            self.line(&pending[start..start + end], unit);
            start += end;
        }
        pending.drain(..start);
        self.pending = pending;
    }

    /// One whole line: handed out, or kept with the PEM block it belongs to.
    fn line(&mut self, line: &[u8], unit: &mut impl FnMut(&[u8])) {
        let has = |needle: &[u8]| memchr::memmem::find(line, needle).is_some();
        match self.block.take() {
            Some(mut block) => {
                block.extend_from_slice(line);
                if has(b"-----END ") || block.len() > BLOCK_LIMIT {
                    unit(&block);
                } else {
                    self.block = Some(block);
                }
            }
            None if has(b"-----BEGIN ") && !has(b"-----END ") => {
                self.block = Some(line.to_vec());
            }
            None => unit(line),
        }
    }

    /// Hands out what waits for a unit's end (at the stream's end, or
    /// when it has been quiet).
    pub fn flush(&mut self, unit: &mut impl FnMut(&[u8])) {
        let mut rest = self.block.take().unwrap_or_default();
        rest.append(&mut self.pending);
        if !rest.is_empty() {
            unit(&rest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units(l: &mut Lines, chunks: &[&[u8]], flush: bool) -> Vec<String> {
        let mut out = Vec::new();
        for c in chunks {
            l.feed(c, &mut |u| {
                out.push(String::from_utf8_lossy(u).into_owned())
            });
        }
        if flush {
            l.flush(&mut |u| out.push(String::from_utf8_lossy(u).into_owned()));
        }
        out
    }

    #[test]
    fn lines_pem_blocks_and_long_runs_are_units() {
        let mut l = Lines::new(false);
        assert_eq!(
            units(&mut l, &[b"a", b"b\nc", b"d\n", b"e"], false),
            ["ab\n", "cd\n"]
        );
        assert_eq!(l.held(), 1);
        assert_eq!(units(&mut l, &[], true), ["e"]);
        let pem: &[&[u8]] = &[b"x\n-----BEGIN KEY-----\nAAA", b"A\n-----END KEY-----\ny\n"];
        assert_eq!(
            units(&mut Lines::new(false), pem, false),
            [
                "x\n",
                "-----BEGIN KEY-----\nAAAA\n-----END KEY-----\n",
                "y\n"
            ]
        );
        let long = vec![b'z'; LINE_LIMIT + 10];
        let got = units(&mut Lines::new(false), &[&long], true);
        assert_eq!(
            got.iter().map(String::len).collect::<Vec<_>>(),
            [LINE_LIMIT, 10]
        );
        assert_eq!(
            units(&mut Lines::new(true), &[b"ls\rpwd\r"], false),
            ["ls\r", "pwd\r"]
        );
    }

    proptest::proptest! {
        /// However a stream is cut into chunks, it comes out as the same
        /// units, and every byte comes out once, in order.
        #[test]
        fn any_chunking_gives_the_same_units(
            data in proptest::collection::vec(proptest::prop_oneof![
                proptest::prelude::any::<u8>(),
                proptest::prelude::Just(b'\n'),
                proptest::prelude::Just(b'\r'),
            ], 0..12_000),
            cut in 1usize..5000,
            cr in proptest::prelude::any::<bool>(),
            pem in proptest::prelude::any::<bool>(),
        ) {
            let mut data = data;
            if pem {
                data.splice(0..0, b"-----BEGIN KEY-----\n".iter().copied());
            }
            let mut whole = Lines::new(cr);
            let a = units(&mut whole, &[&data], true);
            let mut pieces = Lines::new(cr);
            let chunks: Vec<&[u8]> = data.chunks(cut).collect();
            let b = units(&mut pieces, &chunks, true);
            proptest::prop_assert_eq!(&a, &b);
            let mut joined = Vec::new();
            let mut l = Lines::new(cr);
            l.feed(&data, &mut |u| joined.extend_from_slice(u));
            l.flush(&mut |u| joined.extend_from_slice(u));
            proptest::prop_assert_eq!(joined, data);
        }
    }
}
