//! The backend's answers, one function each: how each completes the
//! statements waiting for it.

use super::*;

impl Tracker {
    /// A ParameterStatus: why it ends the session, when it reports a pinned
    /// setting changed by code the gateway could not see into (what follows
    /// can no longer be read as the server reads it).
    pub(super) fn on_parameter_status(
        &mut self,
        body: &[u8],
    ) -> Result<Option<String>, CodecError> {
        let mut c = crate::codec::Cursor::new(body);
        let name = c.cstr("parameter name")?;
        let value = c.cstr("parameter value")?;
        Ok(gate::settings::reported_break(name, value))
    }

    /// A CommandComplete: a statement's tag and rows (a SQL `PREPARE` takes
    /// its name now).
    pub(super) fn on_command_complete(
        &mut self,
        body: &[u8],
        finished: &mut Vec<ActionRecord>,
    ) -> Result<Flow, CodecError> {
        let tag = parse_command_tag(body)?;
        if let Some(Pending::Statement(s)) = self.pending.front_mut() {
            let i = s.answered;
            s.answered += 1;
            if tag == "PREPARE" {
                if let Some((_, done)) = s.sql_prepares.iter().find(|(j, _)| *j == i) {
                    let done = done.clone();
                    // One namespace: a protocol-level statement of that name is gone.
                    if let Some(name) = &done.prepares {
                        self.prepared.remove(names::server_name(name));
                    }
                    self.gate.sql_prepared_done(&done);
                }
            }
        }
        if let Some(Pending::Statement(s)) = self.pending.front_mut() {
            if !s.tags.is_empty() {
                s.tags.push_str("; ");
            }
            s.tags.push_str(tag);
            if let Some(n) = rows_from_tag(tag) {
                s.rows = Some(s.rows.unwrap_or(0) + n);
            }
            if s.kind == Flavour::Extended {
                self.complete_front(finished);
            }
        }
        Ok(Flow::Forward)
    }

    /// An EmptyQueryResponse or PortalSuspended: an Execute is done.
    pub(super) fn on_empty_or_suspended(
        &mut self,
        ty: u8,
        finished: &mut Vec<ActionRecord>,
    ) -> Result<Flow, CodecError> {
        if let Some(Pending::Statement(s)) = self.pending.front_mut() {
            if s.kind == Flavour::Extended {
                if ty == be::PORTAL_SUSPENDED {
                    s.tags.push_str("(portal suspended)");
                }
                self.complete_front(finished);
            }
        }
        Ok(Flow::Forward)
    }

    /// An ErrorResponse: the statement it answers failed (a refused one gets
    /// the gateway's refusal instead of the poison's error).
    pub(super) fn on_error(
        &mut self,
        body: &[u8],
        finished: &mut Vec<ActionRecord>,
    ) -> Result<Flow, CodecError> {
        let f = parse_error_fields(body)?;
        match self.pending.front_mut() {
            Some(Pending::Statement(s)) if s.refusal.is_some() => {
                // The backend's error for the poison: the client gets the refusal.
                let refusal = s.refusal.take();
                let kind = s.kind;
                if let Some(r) = refusal {
                    s.error = Some((r.sqlstate.to_string(), r.message));
                    if kind == Flavour::Extended {
                        self.complete_front(finished);
                    }
                    return Ok(Flow::Replace(r.error));
                }
            }
            Some(Pending::Statement(s)) => {
                s.error = Some((f.code, f.message));
                if s.kind == Flavour::Extended {
                    self.complete_front(finished);
                }
            }
            Some(
                Pending::Sync
                | Pending::Describe { .. }
                | Pending::Define(_)
                | Pending::Added(_)
                | Pending::Close,
            ) => {
                // Parse, Bind or Describe failed before any Execute of this batch.
                let mut failed = None;
                match self.pending.front() {
                    Some(Pending::Describe { .. } | Pending::Added(None) | Pending::Close) => {
                        self.pending.pop_front();
                    }
                    Some(Pending::Define(_) | Pending::Added(Some(_))) => {
                        if let Some(Pending::Define(d) | Pending::Added(Some(d))) =
                            self.pending.pop_front()
                        {
                            // A Parse that failed is recorded with its own text.
                            failed = Some(match &d.what {
                                names::Defined::Statement(s) => s.text.clone(),
                                names::Defined::Portal(p) => p.statement.text.clone(),
                            });
                            self.not_defined(d);
                        }
                    }
                    _ => {}
                }
                let text = failed
                    .or_else(|| self.last_parse.clone())
                    .unwrap_or_else(|| Arc::from("<extended protocol message>"));
                self.push_undecided(text);
                // The pushed statement went to the back; complete it directly.
                if let Some(Pending::Statement(mut s)) = self.pending.pop_back() {
                    s.error = Some((f.code, f.message));
                    self.finish(s, finished);
                }
            }
            // Answered before anything reaches here (`Tracker::on_backend`).
            Some(Pending::AddedQuery) | None => {}
        }
        Ok(Flow::Forward)
    }

    /// A ReadyForQuery: the batch is over; whatever the server skipped ends
    /// here.
    pub(super) fn on_ready_for_query(
        &mut self,
        body: &[u8],
        finished: &mut Vec<ActionRecord>,
    ) -> Result<Flow, CodecError> {
        // Executes and Describes still queued before the Sync were skipped by the backend.
        loop {
            match self.pending.front() {
                Some(Pending::Statement(s)) if s.kind == Flavour::Extended => {}
                Some(
                    Pending::Describe { .. }
                    | Pending::Define(_)
                    | Pending::Added(_)
                    | Pending::Close,
                ) => {}
                _ => break,
            }
            if let Some(Pending::Define(d) | Pending::Added(Some(d))) = self.pending.pop_front() {
                self.not_defined(d);
            }
        }
        // Idle: the transaction ended, and its portals with it.
        if body.first() == Some(&be::IDLE) {
            self.forget_portals();
        }
        match self.pending.front() {
            Some(Pending::Statement(_)) => self.complete_front(finished),
            Some(Pending::Sync) => {
                self.pending.pop_front();
            }
            Some(
                Pending::Describe { .. }
                | Pending::Define(_)
                | Pending::Added(_)
                | Pending::Close
                | Pending::AddedQuery,
            )
            | None => {}
        }
        Ok(Flow::Forward)
    }
}
