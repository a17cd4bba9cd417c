//! The tracker's side of masking: which description a result's rows follow,
//! and the masking of every message that carries values.

use super::Flow;
use super::{Pending, Tracker};
use crate::codec::backend::{error_response, ErrorNotice};
use crate::codec::msg::backend as be;
use crate::codec::CodecError;
use crate::mask::{parse_row_description, MaskFailure, PlanState};
use bytes::BytesMut;
use std::sync::Arc;

/// SQLSTATE of a result withheld because it could not be masked.
const WITHHELD: &str = "58000";

impl Tracker {
    /// Masks (or notes, for descriptions) a message that carries values.
    /// `None`: not a message masking handles; the usual bookkeeping applies.
    pub(super) fn mask_backend(&mut self, ty: u8, body: &[u8]) -> Result<Option<Flow>, CodecError> {
        let flow = match ty {
            be::ROW_DESCRIPTION => {
                let cols = parse_row_description(body)?;
                match self.pending.front_mut() {
                    Some(Pending::Describe { parse_id, bind_id }) => {
                        let (parse_id, bind_id) = (*parse_id, *bind_id);
                        self.pending.pop_front();
                        self.described(parse_id, bind_id, cols);
                    }
                    Some(Pending::Statement(s)) => {
                        // A simple query's (or FETCH's) own description.
                        s.result.columns = Some(cols);
                        s.result.formats = None;
                        s.plan = None;
                    }
                    _ => {}
                }
                Flow::Forward
            }
            be::NO_DATA => {
                if let Some(Pending::Describe { .. }) = self.pending.front() {
                    self.pending.pop_front();
                }
                Flow::Forward
            }
            be::DATA_ROW => self.mask_row(body),
            be::COPY_OUT_RESPONSE => {
                if body.first() == Some(&1) {
                    self.fail(MaskFailure(
                        "COPY in binary format cannot be masked; use FORMAT text or csv".into(),
                    ))
                } else {
                    // Every masked COPY is read field by field with its own
                    // options (a CSV QUOTE or ESCAPE can mangle a value past
                    // the detectors otherwise), with or without column rules.
                    self.copy_started(body)?
                }
            }
            be::COPY_DATA => {
                let Tracker {
                    pending,
                    masking,
                    stray_tally,
                    ..
                } = self;
                let r = match pending.front_mut() {
                    Some(Pending::Statement(s)) => match s.copy_plan.as_mut() {
                        Some(plan) => masking.copy_row_by_plan(plan, body, &mut s.tally),
                        None => Ok(masking.copy_row(body, &mut s.tally)),
                    },
                    _ => Ok(masking.copy_row(body, stray_tally)),
                };
                match r {
                    Ok(Some(m)) => Flow::Replace(m),
                    Ok(None) => Flow::Forward,
                    Err(f) => self.fail(f),
                }
            }
            be::NOTICE_RESPONSE | be::NOTIFICATION_RESPONSE | be::FUNCTION_CALL_RESPONSE => {
                let (masking, tally) = self.masking_and_tally();
                let r = match ty {
                    be::NOTICE_RESPONSE => masking.error_fields(be::NOTICE_RESPONSE, body, tally),
                    be::NOTIFICATION_RESPONSE => masking.notification(body, tally),
                    _ => masking.function_result(body, tally),
                };
                match r {
                    Ok(Some(m)) => Flow::Replace(m),
                    Ok(None) => Flow::Forward,
                    Err(f) => self.fail(f),
                }
            }
            _ => return Ok(None),
        };
        Ok(Some(flow))
    }

    /// Masks the fields of a backend ErrorResponse the client will see.
    pub(super) fn mask_error(&mut self, body: &[u8]) -> Flow {
        let (masking, tally) = self.masking_and_tally();
        match masking.error_fields(be::ERROR_RESPONSE, body, tally) {
            Ok(Some(m)) => Flow::Replace(m),
            Ok(None) => Flow::Forward,
            Err(f) => self.fail(f),
        }
    }

    /// The session's masking and the tally of the statement in progress
    /// (a scratch tally when there is none).
    fn masking_and_tally(
        &mut self,
    ) -> (
        &mut crate::mask::SessionMasking,
        &mut gatehouse_mask::MaskTally,
    ) {
        let tally = match self.pending.front_mut() {
            Some(Pending::Statement(s)) => &mut s.tally,
            _ => &mut self.stray_tally,
        };
        (&mut self.masking, tally)
    }

    /// A CopyOutResponse under masking: the COPY's fields are read with its
    /// own options and, under column rules, matched to its table's columns,
    /// so covered ones are masked by rule.
    fn copy_started(&mut self, body: &[u8]) -> Result<Flow, CodecError> {
        let mut c = crate::codec::Cursor::new(body);
        c.u8("copy format")?;
        let fields = usize::try_from(c.i16("column count")?).unwrap_or(0);
        let Tracker {
            pending, masking, ..
        } = self;
        let Some(Pending::Statement(s)) = pending.front_mut() else {
            return Ok(self.fail(MaskFailure("a COPY started outside any statement".into())));
        };
        let Some(copy) = s.result.copy_out.as_ref().and_then(|a| a.copy_out.as_ref()) else {
            return Ok(self.fail(MaskFailure(
                "this COPY came in a query string with other statements, so the gateway cannot \
                 read its fields with its own options to mask them; send the COPY on its own"
                    .into(),
            )));
        };
        Ok(match masking.copy_plan(copy, fields) {
            PlanState::Ready(p) => {
                s.copy_plan = Some(p);
                Flow::Forward
            }
            PlanState::Wait => Flow::Pause(super::Pause::CatalogLookup),
            PlanState::Failed(e) => self.fail(MaskFailure(e)),
        })
    }

    fn mask_row(&mut self, body: &[u8]) -> Flow {
        let Tracker {
            pending, masking, ..
        } = self;
        let Some(Pending::Statement(s)) = pending.front_mut() else {
            return self.fail(MaskFailure("a row arrived outside any statement".into()));
        };
        let plan = match s.plan {
            Some(ref p) => p,
            None => {
                let Some(cols) = &s.result.columns else {
                    return self.fail(MaskFailure(
                        "the result's columns were never described, so its values cannot be classified; \
                         send Describe before Execute (every common driver does)"
                            .into(),
                    ));
                };
                match masking.plan(cols, s.result.formats.as_ref()) {
                    PlanState::Ready(p) => &*s.plan.insert(p),
                    PlanState::Wait => return Flow::Pause(super::Pause::CatalogLookup),
                    PlanState::Failed(e) => return self.fail(MaskFailure(e)),
                }
            }
        };
        match masking.data_row(plan, body, &mut s.tally) {
            Ok(None) => Flow::Forward,
            Ok(Some(m)) => Flow::Replace(m),
            Err(f) => self.fail(f),
        }
    }

    /// Stores a Describe's answer where the statements and portals it
    /// describes will find it.
    fn described(&mut self, parse_id: u64, bind_id: u64, cols: Arc<[crate::mask::Column]>) {
        if parse_id != 0 {
            for p in self
                .prepared
                .values_mut()
                .filter(|p| p.parse_id == parse_id)
            {
                p.columns = Some(cols.clone());
            }
            for p in self
                .portals
                .values_mut()
                .filter(|p| p.statement.parse_id == parse_id)
            {
                p.statement.columns = Some(cols.clone());
            }
        }
        if bind_id != 0 {
            // The Execute may not have arrived yet: it will find them here.
            for p in self.portals.values_mut().filter(|p| p.bind_id == bind_id) {
                p.columns = Some(cols.clone());
            }
        }
        for pending in self.pending.iter_mut() {
            // Definitions the server has not confirmed yet take it along.
            if let Pending::Define(d) | Pending::Added(Some(d)) = pending {
                d.described(parse_id, bind_id, &cols);
                continue;
            }
            let Pending::Statement(s) = pending else {
                continue;
            };
            if bind_id != 0 && s.result.bind_id == bind_id {
                // A portal's description carries the real formats.
                s.result.columns = Some(cols.clone());
                s.result.formats = None;
                s.plan = None;
            } else if parse_id != 0 && s.result.parse_id == parse_id && s.result.columns.is_none() {
                s.result.columns = Some(cols.clone());
            }
        }
    }

    /// Withholds the current result: the client gets an error in its place
    /// and nothing more until ReadyForQuery.
    fn fail(&mut self, f: MaskFailure) -> Flow {
        let message = format!(
            "gatehouse withheld this result because it could not be masked: {}",
            f.0
        );
        tracing::warn!(reason = %f.0, "masking failed; result withheld");
        if let Some(Pending::Statement(s)) = self.pending.front_mut() {
            s.error = Some((WITHHELD.to_string(), message.clone()));
        }
        self.masking.withholding = true;
        let mut out = BytesMut::new();
        error_response(
            &mut out,
            &ErrorNotice {
                severity: "ERROR",
                code: WITHHELD,
                message: &message,
                detail: None,
                hint: Some("no row of this result was sent in clear; if this persists, tell the gateway's operator"),
            },
        );
        Flow::Replace(out)
    }
}
