//! A statement's record, built in one place: what it keeps of the text,
//! the parameters and the outcome, masked whatever the caller may see.

use super::*;

impl Tracker {
    pub(super) fn complete_front(&mut self, finished: &mut Vec<ActionRecord>) {
        if let Some(Pending::Statement(s)) = self.pending.pop_front() {
            self.finish(s, finished);
        }
    }

    pub(super) fn finish(&mut self, mut s: InFlight, finished: &mut Vec<ActionRecord>) {
        let outcome = match s.error.take() {
            Some((sqlstate, message)) => ActionOutcome::Error {
                code: sqlstate,
                message,
            },
            None => ActionOutcome::Ok {
                summary: std::mem::take(&mut s.tags),
                count: s.rows,
            },
        };
        let r = self.record(s, outcome);
        finished.push(r);
    }

    /// The record of a statement; what it keeps of the statement (text,
    /// parameters, error message) is masked, whatever the caller may see.
    fn record(&mut self, s: InFlight, outcome: ActionOutcome) -> ActionRecord {
        let m = &mut self.masking;
        let outcome = match outcome {
            ActionOutcome::Error {
                code: sqlstate,
                message,
            } => ActionOutcome::Error {
                code: sqlstate,
                message: m.mask_error_message(message),
            },
            o => o,
        };
        ActionRecord {
            session_id: self.session_id,
            seq: s.seq,
            protocol: s.kind.as_str().to_string(),
            // Masked when it was taken from the client (`recorded_text`).
            text: s.text.to_string(),
            params: s
                .params
                .into_iter()
                .map(|p| p.map(|v| m.mask_owned(v)))
                .collect(),
            started_at: s.started_at,
            duration_us: s.t0.elapsed().as_micros() as u64,
            outcome,
            decision: s.decision,
            masking: m.summary(&s.tally),
            exchange: None,
        }
    }

    /// Statements still waiting for an answer when the session ends.
    pub(crate) fn drain_incomplete(&mut self) -> Vec<ActionRecord> {
        let mut left = Vec::new();
        while let Some(p) = self.pending.pop_front() {
            if let Pending::Statement(s) = p {
                left.push(self.record(s, ActionOutcome::Incomplete));
            }
        }
        left
    }
}

/// Placeholder for a statement not yet decided (its Execute decides it).
pub(super) fn unknown_statement_decision() -> DecisionRecord {
    DecisionRecord {
        decision: Decided::Undecided,
        policies: Vec::new(),
        mode: DecidedIn::Unset,
        reason: None,
    }
}

impl Tracker {
    /// The text a record keeps of a statement: masked (once, when it arrives:
    /// a prepared statement's executions share it) and cut at [`MAX_TEXT`].
    pub(super) fn recorded_text(&mut self, sql: &str) -> Arc<str> {
        truncated(&self.masking.mask_for_record(sql))
    }

    /// The text a record keeps of a decided statement: the analysis's
    /// redacted form when it holds a secret, else [`Self::recorded_text`].
    pub(super) fn text_of(&mut self, sql: &str, verdict: &gate::Verdict) -> Arc<str> {
        match &verdict.recorded {
            Some(redacted) => truncated(&self.masking.mask_for_record(redacted)),
            None => self.recorded_text(sql),
        }
    }
}

fn truncated(s: &str) -> Arc<str> {
    if s.len() <= MAX_TEXT {
        return Arc::from(s);
    }
    let mut end = MAX_TEXT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Arc::from(format!("{}… ({} bytes in all)", &s[..end], s.len()))
}

pub(super) fn param_text(v: &BindValue<'_>) -> Option<String> {
    let (bytes, binary) = match v {
        BindValue::Null => return None,
        BindValue::Text(b) => (*b, false),
        BindValue::Binary(b) => (*b, true),
    };
    let shown = &bytes[..bytes.len().min(MAX_PARAM)];
    let mut s = if binary {
        let mut s = String::with_capacity(2 + 2 * shown.len());
        s.push_str("\\x");
        for b in shown {
            let _ = write!(s, "{b:02x}");
        }
        s
    } else {
        String::from_utf8_lossy(shown).into_owned()
    };
    if bytes.len() > MAX_PARAM {
        let _ = write!(s, "… ({} bytes in all)", bytes.len());
    }
    Some(s)
}
