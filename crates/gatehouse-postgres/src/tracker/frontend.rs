//! The client's messages, one function each: what each decides, queues
//! and defines.

use super::*;

impl Tracker {
    /// A simple Query: decided whole, its statements recorded as one.
    pub(super) fn on_query(&mut self, body: &[u8], w: &mut WriteAhead) -> Result<Flow, CodecError> {
        let q = parse_query(body)?;
        // A simple Query drops the unnamed statement on the server.
        self.forget_unnamed_statement();
        let (verdict, single) = match self.next_verdict.take() {
            Some(v) => (v, None),
            None => self.gate.decide_text(q, Flavour::Simple),
        };
        let cap = verdict
            .row_cap
            .clone()
            .filter(|_| verdict.refusal.is_none() && verdict.hold.is_none());
        // Capped: it runs once the transaction state it runs in is known.
        let verdict = match cap.as_ref().map(|_| self.capped_query_may_go()) {
            Some(row_cap::Drained::Wait) => return Ok(Flow::Pause(Pause::RowCap)),
            Some(row_cap::Drained::Refuse) => self.gate.refuse(
                "a statement under a row cap (@max_rows) runs in a transaction whose state the \
                 gateway must know, and extended-protocol messages went before it without a \
                 Sync; send Sync first"
                    .into(),
            ),
            _ => verdict,
        };
        let cap = cap.filter(|_| verdict.refusal.is_none());
        let fingerprint = verdict.cap_fingerprint.clone();
        let text = self.text_of(q, &verdict);
        let result = ResultSource {
            copy_out: copy_out(single.as_ref()),
            ..ResultSource::default()
        };
        let reads_only = single.as_ref().is_some_and(|a| a.only_reads());
        let flow = self.gated(
            w,
            Flavour::Simple,
            text,
            Vec::new(),
            verdict,
            gate::poison_query,
            result,
            reads_only,
        );
        Ok(match cap {
            Some(cap) => self.capped_query(body, cap, fingerprint),
            None => flow,
        })
    }

    /// A Parse: decided now; its name holds the statement once the server
    /// confirms it. One that needs approval is kept back until its Bind
    /// (`kept_back.rs`).
    pub(super) fn on_parse(&mut self, body: &[u8], w: &mut WriteAhead) -> Result<Flow, CodecError> {
        let p = parse_parse(body)?;
        let (verdict, analysis) = match reserved(p.name) {
            Some(refusal) => (self.gate.refuse(refusal), None),
            None => self.gate.decide_text(p.query, Flavour::Extended),
        };
        let text = self.text_of(p.query, &verdict);
        self.last_parse = Some(text.clone());
        // Needing approval is decided at its Bind, with its parameters.
        let needs_approval = verdict.record.decision == Decided::Review
            && !verdict.review_routes.is_empty()
            && analysis.is_some()
            && self.gate.takes_approvals();
        let refused = verdict.refusal.is_some() && !needs_approval;
        if verdict.changes_schema && !refused {
            self.masking.schema_changed();
        }
        let parse_id = self.new_id();
        if refused {
            // The server keeps a named statement's older definition;
            // the unnamed one it drops.
            if p.name.is_empty() {
                self.forget_unnamed_statement();
            }
            // Recorded at the Parse's place; the backend's error for the poison is swapped for ours.
            self.push(
                w,
                Flavour::Extended,
                text,
                Vec::new(),
                verdict.record,
                verdict.refusal,
                ResultSource::default(),
                true,
            );
            Ok(Flow::Replace(gate::poison_parse(p.name)))
        } else {
            let prepared = Prepared {
                text,
                analysis,
                decision: verdict.record,
                generation: self.gate.generation(),
                refused,
                needs_approval,
                parse_id,
                columns: None,
                kept_back: None,
                row_cap: verdict.row_cap.clone(),
            };
            // Needing approval, it does not reach the server until approved.
            if needs_approval {
                return Ok(self.keep_back(p.name, body, prepared));
            }
            self.define(p.name, names::Defined::Statement(prepared));
            Ok(Flow::Forward)
        }
    }

    /// A Bind: the portal takes the statement and its parameters once the
    /// server confirms it.
    pub(super) fn on_bind(&mut self, body: &[u8], w: &mut WriteAhead) -> Result<Flow, CodecError> {
        let b = parse_bind(body)?;
        if let Some(refusal) = reserved(b.portal).or_else(|| reserved(b.statement)) {
            let text = Arc::from(format!("<portal {:?}>", b.portal));
            let verdict = self.gate.refuse(refusal);
            return Ok(self.gated(
                w,
                Flavour::Extended,
                text,
                Vec::new(),
                verdict,
                gate::poison_bind,
                ResultSource::default(),
                false,
            ));
        }
        let statement = match self.statement_named(b.statement) {
            names::Named::Known(p) => p.clone(),
            names::Named::Ambiguous => Prepared {
                text: Arc::from(format!("<prepared statement {:?}>", b.statement)),
                analysis: None,
                decision: DecisionRecord {
                    decision: Decided::Deny,
                    policies: Vec::new(),
                    mode: DecidedIn::Unset,
                    reason: Some(format!(
                        "prepared statement {:?} was redefined in a batch the server has not \
                         answered yet, so the gateway cannot tell which definition this Bind \
                         uses; wait for that batch's ReadyForQuery before binding it",
                        b.statement
                    )),
                },
                generation: 0,
                refused: true,
                needs_approval: false,
                parse_id: 0,
                columns: None,
                kept_back: None,
                row_cap: None,
            },
            // A statement made by SQL PREPARE, or one the gateway never saw:
            // generation 0 makes the Execute decide it.
            names::Named::Unknown => {
                let analysis = self.gate.sql_prepared(b.statement);
                let text = match &analysis {
                    Some(a) => self.recorded_text(&a.text),
                    None => Arc::from(format!("<unknown prepared statement {:?}>", b.statement)),
                };
                Prepared {
                    text,
                    analysis,
                    decision: unknown_statement_decision(),
                    generation: 0,
                    refused: false,
                    needs_approval: false,
                    parse_id: 0,
                    columns: None,
                    kept_back: None,
                    row_cap: None,
                }
            }
        };
        // A statement that holds a secret (a dblink connection string,
        // a password) may hold it in a parameter: none is recorded.
        let params = if statement.analysis.as_ref().is_some_and(|a| a.secret) {
            b.params
                .iter()
                .map(|_| Some(WITHHELD_PARAMETER.to_string()))
                .collect()
        } else {
            b.params.iter().map(param_text).collect()
        };
        // Only a statement that needs approval (or may be approved over its
        // row cap) pays for hashing its parameters.
        let approvable = statement.needs_approval || capped_with_route(&statement);
        let fingerprint = match (&statement.analysis, approvable) {
            (Some(a), true) => {
                let raw: Vec<Option<&[u8]>> = b
                    .params
                    .iter()
                    .map(|v| match v {
                        BindValue::Null => None,
                        BindValue::Text(b) | BindValue::Binary(b) => Some(*b),
                    })
                    .collect();
                Some(self.gate.fingerprint(Flavour::Extended, &a.text, &raw))
            }
            _ => None,
        };
        let bind_id = self.new_id();
        let formats = ResultFormats::from_codes(b.result_formats);
        if statement.kept_back.is_some() {
            let kept = kept_back::KeptBind {
                portal: b.portal,
                statement_name: b.statement,
                statement,
                params,
                fingerprint,
                bind_id,
                formats,
                body,
            };
            return Ok(self.bind_kept_back(kept, w));
        }
        let portal = Portal {
            statement,
            params,
            fingerprint,
            bind_id,
            formats,
            columns: None,
            approved: None,
        };
        self.define(b.portal, names::Defined::Portal(portal));
        Ok(Flow::Forward)
    }

    /// A Describe: under masking its answer is matched to the Parse or Bind
    /// it asked about; a kept-back statement is described from a copy.
    pub(super) fn on_describe(&mut self, body: &[u8]) -> Result<Flow, CodecError> {
        let (parse_id, bind_id) = match parse_describe(body)? {
            DescribeTarget::Statement(n) => match self.statement_named(n) {
                names::Named::Known(p) => match p.kept_back.clone() {
                    Some(kept) => return Ok(self.describe_kept_back(&kept, p.parse_id)),
                    None => (p.parse_id, 0),
                },
                _ => (0, 0),
            },
            DescribeTarget::Portal(n) => match self.portal_named(n) {
                names::Named::Known(p) => (0, p.bind_id),
                _ => (0, 0),
            },
        };
        if self.masking.active {
            self.pending
                .push_back(Pending::Describe { parse_id, bind_id });
        }
        Ok(Flow::Forward)
    }

    /// An Execute: the portal's statement runs only if decided under the
    /// policy in force and allowed (and, when it needs approval, approved with
    /// these parameters).
    pub(super) fn on_execute(
        &mut self,
        body: &[u8],
        w: &mut WriteAhead,
    ) -> Result<Flow, CodecError> {
        let name = parse_execute(body)?;
        let portal = match self.portal_named(name) {
            names::Named::Known(p) => p,
            // The server may hold a portal of that name the gateway
            // let go of (names.rs): refused, never forwarded undecided.
            unknown => {
                let reason = match unknown {
                    names::Named::Ambiguous => format!(
                        "portal {name:?} was rebound in a batch the server has not answered yet, \
                         so the gateway cannot tell which statement it runs"
                    ),
                    _ => format!("the gateway knows no portal {name:?} bound in this session"),
                };
                let text = Arc::from(format!("<portal {name:?}>"));
                let verdict = self.gate.refuse(reason);
                return Ok(self.gated_execute(
                    w,
                    text,
                    Vec::new(),
                    verdict,
                    ResultSource::default(),
                    false,
                ));
            }
        };
        let (st, params) = (portal.statement.clone(), portal.params.clone());
        let fingerprint = portal.fingerprint.clone();
        let approved = portal.approved.clone();
        let runs_approved = approved.is_some();
        let result = match &portal.columns {
            Some(c) => ResultSource {
                columns: Some(c.clone()),
                formats: None,
                parse_id: st.parse_id,
                bind_id: portal.bind_id,
                copy_out: copy_out(st.analysis.as_ref()),
            },
            None => ResultSource {
                columns: st.columns.clone(),
                formats: Some(portal.formats.clone()),
                parse_id: st.parse_id,
                bind_id: portal.bind_id,
                copy_out: copy_out(st.analysis.as_ref()),
            },
        };
        let text = st.text.clone();
        let reads_only = st.analysis.as_ref().is_some_and(|a| a.only_reads());
        // Forward only a statement decided under the policy in force and allowed.
        // A refused one is poisoned here too: a statement of the same name made
        // earlier may still exist on the backend and must not run in its place.
        let verdict = match (&st.analysis, fingerprint) {
            // Approved at its Bind (kept back until then): runs on that.
            _ if approved.is_some() => approved.map(|v| *v),
            // Needs approval (or may be approved over its row cap): decided
            // now, with its parameters.
            (Some(a), Some(fingerprint)) if st.needs_approval || capped_with_route(&st) => {
                Some(self.next_verdict.take().unwrap_or_else(|| {
                    self.gate
                        .decide_approvable(std::slice::from_ref(a), Flavour::Extended, || {
                            fingerprint
                        })
                        .0
                }))
            }
            // Cannot happen (Parse marks it only with an analysis, Bind then
            // fingerprints it); refused rather than forwarded undecided.
            _ if st.needs_approval => Some(self.gate.refuse(format!(
                "{}: needs approval, but its parameters could not be bound to one",
                st.text
            ))),
            _ if !st.refused && st.generation == self.gate.generation() => None,
            (Some(a), _) => Some(self.gate.decide(std::slice::from_ref(a), Flavour::Extended)),
            (None, _) if st.refused => Some(
                self.gate.refuse(
                    st.decision
                        .reason
                        .clone()
                        .unwrap_or_else(|| "refused at Parse".into()),
                ),
            ),
            (None, _) => Some(self.gate.refuse(format!(
                "{}: the gateway did not see this statement prepared, so it cannot decide it",
                st.text
            ))),
        };
        if runs_approved {
            // Its approval is recorded used with this run, once.
            if let Some(v) = self.portal_mut(name).and_then(|p| p.approved.as_mut()) {
                v.approval = None;
            }
        }
        let (cap, cap_fingerprint) = match &verdict {
            Some(v) => (
                v.row_cap.clone().filter(|_| v.refusal.is_none()),
                v.cap_fingerprint.clone(),
            ),
            None => (st.row_cap.clone(), None),
        };
        // A capped statement runs whole: its tag counts every row it changed.
        let verdict = match verdict {
            _ if cap.is_some() && execute_row_limit(body) != 0 => Some(self.gate.refuse(format!(
                "{}: policy `{}` caps the rows it may change (@max_rows), so it must run \
                     whole, in one Execute without a row limit",
                st.text,
                cap.as_ref().map_or("", |c| c.policy.as_str())
            ))),
            v => v,
        };
        if let Some(mut verdict) = verdict {
            // A SQL PREPARE run this way takes its name when answered, too.
            if let Some(a) = st.analysis.as_ref().filter(|a| a.prepares.is_some()) {
                if verdict.sql_prepares.is_empty() {
                    verdict.sql_prepares.push((0, a.clone()));
                }
            }
            let refused = verdict.refusal.is_some();
            let flow = self.gated_execute(w, text, params, verdict, result, reads_only);
            return Ok(match cap {
                Some(cap) if !refused && matches!(flow, Flow::Forward) => {
                    self.capped_execute(body, cap, cap_fingerprint)
                }
                _ => flow,
            });
        }
        self.push(
            w,
            Flavour::Extended,
            text,
            params,
            st.decision,
            None,
            result,
            reads_only,
        );
        if let Some(a) = st.analysis.filter(|a| a.prepares.is_some()) {
            self.note_sql_prepares(vec![(0, a)]);
        }
        Ok(match cap {
            Some(cap) => self.capped_execute(body, cap, None),
            None => Flow::Forward,
        })
    }

    /// A Sync: the batch's ReadyForQuery completes what the server skipped.
    pub(super) fn on_sync(&mut self) -> Result<Flow, CodecError> {
        self.pending.push_back(Pending::Sync);
        Ok(Flow::Forward)
    }

    /// A Close of a statement or portal.
    pub(super) fn on_close(&mut self, body: &[u8]) -> Result<Flow, CodecError> {
        match parse_close(body)? {
            CloseTarget::Statement(n) => self.close(n, true),
            CloseTarget::Portal(n) => self.close(n, false),
        }
        self.pending.push_back(Pending::Close);
        Ok(Flow::Forward)
    }

    /// A FunctionCall: an opaque call, decided as such.
    pub(super) fn on_function_call(
        &mut self,
        body: &[u8],
        w: &mut WriteAhead,
    ) -> Result<Flow, CodecError> {
        let oid = parse_function_call(body)?;
        let analysis = Arc::new(StatementAnalysis::function_call(oid));
        let verdict = self
            .gate
            .decide(std::slice::from_ref(&analysis), Flavour::FunctionCall);
        let text = Arc::from(analysis.text.as_str());
        Ok(self.gated(
            w,
            Flavour::FunctionCall,
            text,
            Vec::new(),
            verdict,
            gate::poison_function_call,
            ResultSource::default(),
            false,
        ))
    }

    /// The client ends the session.
    pub(super) fn on_terminate(&mut self) -> Result<Flow, CodecError> {
        self.terminated = true;
        Ok(Flow::Forward)
    }
}

/// Why a client may not use this statement or portal name: it is one of
/// the gateway's own.
fn reserved(name: &str) -> Option<String> {
    name.starts_with(gate::RESERVED_PREFIX).then(|| {
        format!(
            "statement and portal names beginning with {:?} are the gateway's own; use another name",
            gate::RESERVED_PREFIX
        )
    })
}

/// The most rows an Execute asks for (0: all).
fn execute_row_limit(body: &[u8]) -> i32 {
    let Some(end) = body.iter().position(|&b| b == 0) else {
        return 0;
    };
    body.get(end + 1..end + 5)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map_or(0, i32::from_be_bytes)
}

/// A prepared statement under a row cap whose policy files over-cap writes
/// for approval: each run is decided with its parameters.
fn capped_with_route(st: &Prepared) -> bool {
    st.row_cap.as_ref().is_some_and(|c| c.approval.is_some())
}
