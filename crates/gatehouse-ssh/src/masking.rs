//! Masking of shell and command output on its way to the caller: each
//! stream is cut into lines (and PEM blocks kept whole) by the core's
//! splitter, so a value split across packets is still found, and each unit
//! is masked by the connection's detectors before it is sent. A line
//! without its end is held until it ends, 4 KiB gather, the stream ends,
//! or, on a terminal, the output pauses (a prompt must show): then it is
//! masked as it stands.

use gatehouse_mask::{
    DetectorSpec, HashKey, MaskError, MaskingEngine, Scratch, Strategy, TextKind,
};
use gatehouse_session::recording::Lines;
use std::sync::Arc;

/// An ssh connection's masking: its own detectors (from
/// `[connection.masking]`, if any) and the secret detectors always
/// (private keys, tokens, passwords in a command's output).
pub fn ssh_masking(detectors: Vec<DetectorSpec>, key: HashKey) -> Result<MaskingEngine, MaskError> {
    let mut detectors = detectors;
    for d in gatehouse_mask::BUILTIN.iter().filter(|d| d.secret) {
        if !detectors.iter().any(|x| x.name == d.name) {
            detectors.push(DetectorSpec::builtin(d, Some(Strategy::Redact)));
        }
    }
    MaskingEngine::new(detectors, Vec::new(), key)
}

/// One output stream masked as it goes.
pub(crate) struct OutputMask {
    engine: Arc<MaskingEngine>,
    lines: Lines,
    scratch: Scratch,
    /// Values masked so far.
    pub(crate) masked: u64,
}

impl OutputMask {
    pub(crate) fn new(engine: Arc<MaskingEngine>) -> Self {
        Self {
            engine,
            lines: Lines::new(false),
            scratch: Scratch::default(),
            masked: 0,
        }
    }

    /// Bytes held back, waiting for their line to end.
    pub(crate) fn held(&self) -> usize {
        self.lines.held()
    }

    /// Takes `bytes`; appends to `out` what may be sent now, masked.
    pub(crate) fn feed(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        let mut lines = std::mem::take(&mut self.lines);
        lines.feed(bytes, &mut |unit| self.unit(unit, out));
        self.lines = lines;
    }

    /// Appends what was held, masked as it stands.
    pub(crate) fn flush(&mut self, out: &mut Vec<u8>) {
        let mut lines = std::mem::take(&mut self.lines);
        lines.flush(&mut |unit| self.unit(unit, out));
        self.lines = lines;
    }

    fn unit(&mut self, unit: &[u8], out: &mut Vec<u8>) {
        if !self.engine.may_mask(unit) {
            out.extend_from_slice(unit);
            return;
        }
        let mut tally = self.engine.tally();
        if !self
            .engine
            .mask_inline(unit, TextKind::Plain, out, &mut self.scratch, &mut tally)
        {
            out.extend_from_slice(unit);
        }
        self.masked += tally.total();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> Arc<MaskingEngine> {
        let email = gatehouse_mask::BUILTIN
            .iter()
            .filter(|d| d.name == "email")
            .map(|d| DetectorSpec::builtin(d, Some(Strategy::Redact)))
            .collect();
        Arc::new(ssh_masking(email, HashKey::new([0; 32])).unwrap())
    }

    #[test]
    fn a_value_split_across_packets_never_goes_out() {
        let mut m = OutputMask::new(engine());
        let mut out = Vec::new();
        m.feed(b"user alice@exa", &mut out);
        assert!(out.is_empty());
        assert_eq!(m.held(), 14);
        m.feed(b"mple.com\nnext", &mut out);
        let sent = String::from_utf8_lossy(&out).into_owned();
        assert!(
            !sent.contains("alice@") && sent.starts_with("user ") && sent.ends_with('\n'),
            "{sent}"
        );
        m.flush(&mut out);
        assert!(String::from_utf8_lossy(&out).ends_with("next"));
        assert_eq!(m.masked, 1);
    }

    #[test]
    fn a_private_key_printed_in_pieces_is_masked_whole() {
        let mut m = OutputMask::new(engine());
        let mut out = Vec::new();
        let key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\nQyNTUxOQAAACBsixMmf6MzdrC17dWtFk6kMUkk8QOCQvGfFS55Z10z6AAAAJgAAAAAAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
        for chunk in key.as_bytes().chunks(7) {
            m.feed(chunk, &mut out);
        }
        m.flush(&mut out);
        let sent = String::from_utf8_lossy(&out).into_owned();
        assert!(
            !sent.contains("b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ"),
            "{sent}"
        );
        assert!(m.masked >= 1);
    }

    #[test]
    fn clean_output_passes_byte_for_byte() {
        let mut m = OutputMask::new(engine());
        let mut out = Vec::new();
        // Terminal escapes, tabs and backslashes included.
        let alphabet = b"abc \n\t\x1b[0m\\";
        let text: Vec<u8> = (0..20_000usize)
            .map(|i| alphabet[i * 7 % alphabet.len()])
            .collect();
        for chunk in text.chunks(1000) {
            m.feed(chunk, &mut out);
        }
        m.flush(&mut out);
        assert_eq!(out, text);
    }
}
