//! RFC 6455 frames read as they pass, in one direction: the gateway relays
//! every byte unchanged and reads the messages' payloads (unmasked) to
//! record them. Nothing is buffered but a frame head and the unmasked
//! bytes of the chunk at hand.

/// What a chunk of frames held.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum WsEvent<'a> {
    /// Payload bytes of a data frame; `first` marks the frame's first bytes
    /// (the channel byte of Kubernetes' channel protocols: the API server
    /// and the kubelet read each frame as a message of its own, a
    /// continuation frame included, so each frame starts with its channel).
    Data { first: bool, bytes: &'a [u8] },
    /// A close frame.
    Close,
}

/// Why the frames cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum WsError {
    #[error("a WebSocket frame uses reserved bits or opcode {0}")]
    Reserved(u8),
    #[error("a WebSocket control frame is fragmented or longer than 125 bytes")]
    BadControl,
    #[error("a WebSocket continuation frame came with no message to continue")]
    Orphan,
    #[error("a WebSocket message started inside another")]
    Interleaved,
    #[error("a WebSocket frame from the {0} is {1}masked")]
    Masking(&'static str, &'static str),
    #[error("a WebSocket frame's 64-bit length has its top bit set")]
    Length,
}

#[derive(Debug)]
enum State {
    /// Reading a frame head (up to 14 bytes).
    Head,
    /// Reading `left` payload bytes of the current frame.
    Payload { left: u64 },
}

/// One direction's frame reader.
#[derive(Debug)]
pub(crate) struct WsFrames {
    /// Client frames are masked, server frames are not (RFC 6455 §5.1).
    from_client: bool,
    state: State,
    head: Vec<u8>,
    mask: Option<[u8; 4]>,
    /// Bytes of the current frame's payload seen (for the mask's phase).
    offset: u64,
    opcode: u8,
    fin: bool,
    /// A data message is open (its later frames are continuations).
    in_message: bool,
    /// The next data bytes are the message's first.
    first: bool,
    scratch: Vec<u8>,
}

impl WsFrames {
    pub(crate) fn new(from_client: bool) -> Self {
        Self {
            from_client,
            state: State::Head,
            head: Vec::with_capacity(14),
            mask: None,
            offset: 0,
            opcode: 0,
            fin: false,
            in_message: false,
            first: false,
            scratch: Vec::new(),
        }
    }

    /// The frame head's full length once its first two bytes are known.
    fn head_len(&self) -> Option<usize> {
        let b1 = *self.head.get(1)?;
        let ext = match b1 & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        Some(2 + ext + if b1 & 0x80 != 0 { 4 } else { 0 })
    }

    /// Reads `input`, calling `on` for what it holds.
    pub(crate) fn feed(
        &mut self,
        mut input: &[u8],
        on: &mut dyn FnMut(WsEvent<'_>),
    ) -> Result<(), WsError> {
        while !input.is_empty() {
            match self.state {
                State::Head => {
                    let want = self.head_len().unwrap_or(2);
                    let take = (want - self.head.len()).min(input.len());
                    self.head.extend_from_slice(&input[..take]);
                    input = &input[take..];
                    if self.head_len() == Some(self.head.len()) {
                        self.start_frame(on)?;
                    }
                }
                State::Payload { left } => {
                    let take = (left.min(input.len() as u64)) as usize;
                    let (chunk, rest) = input.split_at(take);
                    input = rest;
                    let left = left - take as u64;
                    self.state = State::Payload { left };
                    if self.opcode < 8 {
                        self.data(chunk, on);
                    }
                    if left == 0 {
                        self.end_frame(on);
                    }
                }
            }
        }
        Ok(())
    }

    fn start_frame(&mut self, on: &mut dyn FnMut(WsEvent<'_>)) -> Result<(), WsError> {
        let b0 = self.head[0];
        let b1 = self.head[1];
        let opcode = b0 & 0x0f;
        if b0 & 0x70 != 0 || matches!(opcode, 3..=7 | 11..=15) {
            return Err(WsError::Reserved(opcode));
        }
        let fin = b0 & 0x80 != 0;
        let masked = b1 & 0x80 != 0;
        match (self.from_client, masked) {
            (true, false) => return Err(WsError::Masking("client", "not ")),
            (false, true) => return Err(WsError::Masking("server", "")),
            _ => {}
        }
        let (len, at) = match b1 & 0x7f {
            126 => (
                u64::from(u16::from_be_bytes([self.head[2], self.head[3]])),
                4,
            ),
            127 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&self.head[2..10]);
                // RFC 6455: the top bit is 0; readers that clear it would
                // see another frame boundary than the gateway.
                if b[0] & 0x80 != 0 {
                    return Err(WsError::Length);
                }
                (u64::from_be_bytes(b), 10)
            }
            n => (u64::from(n), 2),
        };
        self.mask = masked.then(|| {
            let mut m = [0u8; 4];
            m.copy_from_slice(&self.head[at..at + 4]);
            m
        });
        if opcode >= 8 {
            if !fin || len > 125 {
                return Err(WsError::BadControl);
            }
        } else if opcode == 0 {
            if !self.in_message {
                return Err(WsError::Orphan);
            }
            self.first = true;
        } else {
            if self.in_message {
                return Err(WsError::Interleaved);
            }
            self.in_message = true;
            self.first = true;
        }
        self.opcode = opcode;
        self.fin = fin;
        self.offset = 0;
        self.head.clear();
        self.state = State::Payload { left: len };
        if len == 0 {
            self.end_frame(on);
        }
        Ok(())
    }

    fn data(&mut self, chunk: &[u8], on: &mut dyn FnMut(WsEvent<'_>)) {
        if chunk.is_empty() {
            return;
        }
        let bytes: &[u8] = match self.mask {
            Some(mask) => {
                self.scratch.clear();
                self.scratch.extend(
                    chunk
                        .iter()
                        .enumerate()
                        .map(|(i, b)| b ^ mask[((self.offset + i as u64) % 4) as usize]),
                );
                &self.scratch
            }
            None => chunk,
        };
        self.offset += chunk.len() as u64;
        let first = std::mem::take(&mut self.first);
        on(WsEvent::Data { first, bytes });
    }

    fn end_frame(&mut self, on: &mut dyn FnMut(WsEvent<'_>)) {
        if self.opcode == 8 {
            on(WsEvent::Close);
        }
        if self.opcode < 8 && self.fin {
            self.in_message = false;
        }
        self.state = State::Head;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::stream::fixtures::ws_frame as frame;

    /// (first, bytes) of every data frame, reading `wire` in `cut`-byte pieces.
    fn read(from_client: bool, wire: &[u8], cut: usize) -> Result<Vec<(bool, Vec<u8>)>, WsError> {
        let mut r = WsFrames::new(from_client);
        let mut got: Vec<(bool, Vec<u8>)> = Vec::new();
        for piece in wire.chunks(cut) {
            r.feed(piece, &mut |e| {
                if let WsEvent::Data { first, bytes } = e {
                    got.push((first, bytes.to_vec()));
                }
            })?;
        }
        // Merge pieces: what matters is the bytes and where frames start.
        let mut merged: Vec<(bool, Vec<u8>)> = Vec::new();
        for (first, b) in got {
            match merged.last_mut() {
                Some(last) if !first => last.1.extend(b),
                _ => merged.push((first, b)),
            }
        }
        Ok(merged)
    }

    #[test]
    fn messages_read_the_same_in_any_pieces() {
        let big = vec![7u8; 70_000];
        let mut wire = Vec::new();
        wire.extend(frame(2, true, b"\x01hello", Some([1, 2, 3, 4])));
        wire.extend(frame(9, true, b"ping", Some([9, 9, 9, 9])));
        wire.extend(frame(2, false, b"\x02err", Some([5, 6, 7, 8])));
        wire.extend(frame(0, true, b"or", Some([0, 1, 0, 1])));
        wire.extend(frame(
            2,
            true,
            &[&[0u8][..], &big].concat(),
            Some([4, 3, 2, 1]),
        ));
        wire.extend(frame(2, true, b"", Some([1, 1, 1, 1])));
        for cut in [1, 2, 3, 7, 64, 100_000] {
            let got = read(true, &wire, cut).unwrap();
            assert_eq!(got.len(), 4, "cut {cut}");
            assert_eq!(got[0], (true, b"\x01hello".to_vec()));
            // A continuation frame starts with a channel byte of its own.
            assert_eq!(got[1], (true, b"\x02err".to_vec()));
            assert_eq!(got[2], (true, b"or".to_vec()));
            assert_eq!(got[3].1.len(), 70_001);
        }
        // Servers do not mask.
        let wire = frame(2, true, b"\x01out", None);
        assert_eq!(
            read(false, &wire, 1).unwrap(),
            vec![(true, b"\x01out".to_vec())]
        );
    }

    #[test]
    fn broken_framing_is_named() {
        assert_eq!(
            read(true, &frame(2, true, b"x", None), 1).unwrap_err(),
            WsError::Masking("client", "not ")
        );
        assert_eq!(
            read(false, &frame(2, true, b"x", Some([1, 2, 3, 4])), 1).unwrap_err(),
            WsError::Masking("server", "")
        );
        assert_eq!(
            read(false, &frame(0, true, b"x", None), 1).unwrap_err(),
            WsError::Orphan
        );
        assert_eq!(
            read(false, &frame(3, true, b"x", None), 1).unwrap_err(),
            WsError::Reserved(3)
        );
        assert_eq!(
            read(false, &frame(9, false, b"x", None), 1).unwrap_err(),
            WsError::BadControl
        );
        let two = [frame(2, false, b"a", None), frame(2, true, b"b", None)].concat();
        assert_eq!(read(false, &two, 1).unwrap_err(), WsError::Interleaved);
    }
}
