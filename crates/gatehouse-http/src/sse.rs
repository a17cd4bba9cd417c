//! Server-sent events, masked event by event: each line goes out as soon
//! as it is complete; a `data:` line holding JSON is masked as a JSON
//! document (field rules and detectors), any other `data:` line as text.
//! Field names (`event:`, `id:`, `retry:`) and comments pass unchanged.

use crate::response::{mask_line, BodyError};
use gatehouse_mask::{JsonStream, MaskTally, MaskingEngine, Scratch};

pub(crate) struct SseMasker {
    line: Vec<u8>,
    limit: usize,
    json: Vec<u8>,
}

impl SseMasker {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            line: Vec::new(),
            limit,
            json: Vec::new(),
        }
    }

    pub(crate) fn feed(
        &mut self,
        engine: &MaskingEngine,
        input: &[u8],
        last: bool,
        out: &mut Vec<u8>,
        scratch: &mut Scratch,
        tally: &mut MaskTally,
    ) -> Result<(), BodyError> {
        let mut rest = input;
        while let Some(nl) = memchr::memchr(b'\n', rest) {
            self.line.extend_from_slice(&rest[..=nl]);
            rest = &rest[nl + 1..];
            let line = std::mem::take(&mut self.line);
            let r = self.line_out(engine, &line, out, scratch, tally);
            self.line = line;
            self.line.clear();
            r?;
        }
        self.line.extend_from_slice(rest);
        if self.line.len() > self.limit {
            return Err(BodyError::LineTooLong(self.limit));
        }
        if last && !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.line_out(engine, &line, out, scratch, tally)?;
        }
        Ok(())
    }

    fn line_out(
        &mut self,
        engine: &MaskingEngine,
        line: &[u8],
        out: &mut Vec<u8>,
        scratch: &mut Scratch,
        tally: &mut MaskTally,
    ) -> Result<(), BodyError> {
        let Some(payload) = line.strip_prefix(b"data:") else {
            // Other fields and comments: through the detectors all the same
            // (an id or a comment can carry data too).
            mask_line(engine, line, out, scratch, tally);
            return Ok(());
        };
        out.extend_from_slice(b"data:");
        let body_end = payload.len()
            - payload
                .iter()
                .rev()
                .take_while(|b| matches!(b, b'\n' | b'\r'))
                .count();
        let (body, eol) = payload.split_at(body_end);
        let trimmed = body.trim_ascii_start();
        if trimmed.starts_with(b"{") || trimmed.starts_with(b"[") {
            // A JSON payload: masked as its own document.
            self.json.clear();
            let mut tally_json = tally.clone();
            let mut j = JsonStream::new(self.limit);
            let parsed = j
                .feed(engine, body, &mut self.json, scratch, &mut tally_json)
                .and_then(|_| j.finish(engine, &mut self.json, scratch, &mut tally_json));
            match parsed {
                Ok(()) => {
                    *tally = tally_json;
                    out.extend_from_slice(&self.json);
                    out.extend_from_slice(eol);
                    return Ok(());
                }
                // A document split over several data lines: its field rules
                // could not be applied line by line, so it is withheld.
                Err(e) if has_field_rules(engine) => return Err(e.into()),
                Err(_) => {}
            }
        }
        mask_line(engine, payload, out, scratch, tally);
        Ok(())
    }
}

/// Whether masking has JSON path rules (which only a whole document can honour).
pub(crate) fn has_field_rules(engine: &MaskingEngine) -> bool {
    engine
        .rules()
        .iter()
        .any(|r| matches!(r.target, gatehouse_mask::ColumnTarget::JsonPath(_)))
}
