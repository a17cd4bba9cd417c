//! Masking of backend messages: DataRow, CopyData, ErrorResponse /
//! NoticeResponse and NotificationResponse.

use super::plan::{ColumnPlan, ResultPlan};
use super::types::{bytea_hex, numeric_text, rule_in_place, Treatment};
use super::{MaskFailure, SessionMasking};
use crate::codec::write::{begin, finish};
use crate::codec::Cursor;
use bytes::{BufMut, BytesMut};
use gatehouse_mask::{MaskTally, Masked, TextKind};
use std::io::Write as _;

/// The outcome for one value.
enum Value {
    Keep,
    /// The masked bytes are in `SessionMasking::value`.
    Rewritten,
    Null,
}

impl SessionMasking {
    /// Masks a DataRow body: `None` when it goes out unchanged, otherwise the
    /// replacement message.
    pub(crate) fn data_row(
        &mut self,
        plan: &ResultPlan,
        body: &[u8],
        tally: &mut MaskTally,
    ) -> Result<Option<BytesMut>, MaskFailure> {
        if !plan.any {
            return Ok(None);
        }
        let malformed =
            |what: &str| MaskFailure(format!("the backend sent a malformed row ({what})"));
        let mut c = Cursor::new(body);
        let n = c
            .count16("column count")
            .map_err(|_| malformed("column count"))?;
        if n != plan.columns.len() {
            return Err(MaskFailure(format!(
                "a row has {n} columns but its description {}",
                plan.columns.len()
            )));
        }
        // Start of the values not yet copied to the output, once rewriting.
        let mut start: Option<usize> = None;
        for cp in &plan.columns {
            let at = body.len() - c.remaining().len();
            let len = c
                .i32("value length")
                .map_err(|_| malformed("value length"))?;
            let v = if len < 0 {
                None
            } else {
                Some(
                    c.bytes(len as usize, "value")
                        .map_err(|_| malformed("value"))?,
                )
            };
            let outcome = match (v, cp.origin) {
                (None, _) => Value::Keep,
                (Some(v), None) => self.value(*cp, v, tally)?,
                // A detector's hit here makes the column a found sensitive one.
                (Some(v), Some(origin)) => {
                    tally.take_last_detector();
                    let outcome = self.value(*cp, v, tally)?;
                    if let Some(detector) = tally.take_last_detector() {
                        self.detector_hit(origin, detector);
                    }
                    outcome
                }
            };
            match (outcome, start) {
                (Value::Keep, None) => {}
                (Value::Keep, Some(_)) => {
                    let end = body.len() - c.remaining().len();
                    self.out.put_slice(&body[at..end]);
                }
                (changed, prior) => {
                    if prior.is_none() {
                        let s = begin(&mut self.out, b'D');
                        start = Some(s);
                        self.out.put_slice(&body[..at]);
                    }
                    match changed {
                        Value::Null => self.out.put_i32(-1),
                        _ => {
                            self.out.put_i32(self.value.len() as i32);
                            self.out.put_slice(&self.value);
                        }
                    }
                }
            }
        }
        Ok(start.map(|s| {
            finish(&mut self.out, s);
            self.out.split()
        }))
    }

    fn value(
        &mut self,
        cp: ColumnPlan,
        v: &[u8],
        tally: &mut MaskTally,
    ) -> Result<Value, MaskFailure> {
        let engine = &*self.engine;
        self.value.clear();
        if let Some(rule) = cp.rule {
            if !rule_in_place(cp.treatment) {
                tally.bump_rule(rule);
                return Ok(Value::Null);
            }
            let json = matches!(
                cp.treatment,
                Treatment::Text { json: true, .. } | Treatment::JsonbBinary
            );
            if cp.treatment == Treatment::JsonbBinary {
                self.value.push(1);
            }
            if json {
                self.value.push(b'"');
            }
            if engine.mask_by_rule(rule, v, &mut self.value, tally) == Masked::Null {
                return Ok(Value::Null);
            }
            if json {
                self.value.push(b'"');
            }
            return Ok(Value::Rewritten);
        }
        let scan = &mut self.scratch;
        Ok(match cp.treatment {
            Treatment::Skip => Value::Keep,
            Treatment::Text { in_place, json } => {
                let kind = if json {
                    TextKind::Json
                } else {
                    TextKind::Plain
                };
                match engine.mask_text(v, kind, &mut self.value, scan, tally) {
                    Masked::Clean => Value::Keep,
                    Masked::Rewritten if in_place => Value::Rewritten,
                    _ => Value::Null,
                }
            }
            Treatment::JsonbBinary => {
                let Some((&1, json)) = v.split_first() else {
                    return Err(MaskFailure(
                        "a jsonb value of an unknown binary version".into(),
                    ));
                };
                self.value.push(1);
                match engine.mask_text(json, TextKind::Json, &mut self.value, scan, tally) {
                    Masked::Clean => Value::Keep,
                    Masked::Rewritten => Value::Rewritten,
                    Masked::Null => Value::Null,
                }
            }
            Treatment::ByteaHex | Treatment::Int8Binary | Treatment::NumericBinary => {
                self.decoded.clear();
                let ok = match cp.treatment {
                    Treatment::ByteaHex => bytea_hex(v, &mut self.decoded),
                    // Writing to a Vec cannot fail.
                    Treatment::Int8Binary => <[u8; 8]>::try_from(v)
                        .ok()
                        .and_then(|b| write!(self.decoded, "{}", i64::from_be_bytes(b)).ok()),
                    _ => numeric_text(v, &mut self.decoded),
                };
                if ok.is_none() {
                    return Err(MaskFailure(
                        "a value the gateway could not decode to inspect".into(),
                    ));
                }
                hit_means_null(engine.mask_text(
                    &self.decoded,
                    TextKind::Plain,
                    &mut self.value,
                    scan,
                    tally,
                ))
            }
            Treatment::RawBinary => {
                hit_means_null(engine.mask_text(v, TextKind::Plain, &mut self.value, scan, tally))
            }
            Treatment::IpAddress => {
                // The plan chooses this treatment only when an IP detector is on.
                if let Some(i) = engine.ip_detector() {
                    tally.bump_detector(i);
                }
                Value::Null
            }
        })
    }

    /// Masks one COPY TO STDOUT row (text or CSV) whose options are not
    /// known (no [`CopyPlan`](super::CopyPlan)): hits in the whole line, and
    /// in the line with its backslash escapes undone (a value holding the
    /// delimiter is escaped), are replaced in place, escaped where they
    /// covered escapes.
    pub(crate) fn copy_row(&mut self, body: &[u8], tally: &mut MaskTally) -> Option<BytesMut> {
        self.value.clear();
        if !self.engine.mask_inline(
            body,
            TextKind::Escaped,
            &mut self.value,
            &mut self.scratch,
            tally,
        ) {
            return None;
        }
        let s = begin(&mut self.out, b'd');
        self.out.put_slice(&self.value);
        finish(&mut self.out, s);
        Some(self.out.split())
    }

    /// Masks the text fields of an ErrorResponse or NoticeResponse (`ty`):
    /// message, detail, hint, context and internal query.
    pub(crate) fn error_fields(
        &mut self,
        ty: u8,
        body: &[u8],
        tally: &mut MaskTally,
    ) -> Result<Option<BytesMut>, MaskFailure> {
        let bad = || MaskFailure("the backend sent a malformed error or notice".into());
        // Under column rules quoted values are redacted (`errors.rs`).
        let rules = self.has_rules();
        // A first pass: does any field need masking?
        let mut c = Cursor::new(body);
        let mut any = false;
        loop {
            let f = c.u8("field").map_err(|_| bad())?;
            if f == 0 {
                break;
            }
            let v = c.cstr_bytes("value").map_err(|_| bad())?;
            any |= masked_field(f) && self.engine.may_mask(v);
            any |= rules && super::errors::redact_values(f, v).is_some();
        }
        if !any {
            return Ok(None);
        }
        let s = begin(&mut self.out, ty);
        let mut c = Cursor::new(body);
        loop {
            let f = c.u8("field").map_err(|_| bad())?;
            self.out.put_u8(f);
            if f == 0 {
                break;
            }
            let v = c.cstr_bytes("value").map_err(|_| bad())?;
            let redacted = if rules {
                super::errors::redact_values(f, v)
            } else {
                None
            };
            let v = redacted.as_deref().unwrap_or(v);
            self.value.clear();
            if masked_field(f)
                && self.engine.mask_inline(
                    v,
                    TextKind::Plain,
                    &mut self.value,
                    &mut self.scratch,
                    tally,
                )
            {
                self.out.put_slice(&self.value);
            } else {
                self.out.put_slice(v);
            }
            self.out.put_u8(0);
        }
        finish(&mut self.out, s);
        Ok(Some(self.out.split()))
    }

    /// Masks a NotificationResponse payload.
    pub(crate) fn notification(
        &mut self,
        body: &[u8],
        tally: &mut MaskTally,
    ) -> Result<Option<BytesMut>, MaskFailure> {
        let bad = || MaskFailure("the backend sent a malformed notification".into());
        let mut c = Cursor::new(body);
        let pid = c.i32("pid").map_err(|_| bad())?;
        let channel = c.cstr_bytes("channel").map_err(|_| bad())?;
        let payload = c.cstr_bytes("payload").map_err(|_| bad())?;
        self.value.clear();
        if !self.engine.mask_inline(
            payload,
            TextKind::Plain,
            &mut self.value,
            &mut self.scratch,
            tally,
        ) {
            return Ok(None);
        }
        let s = begin(&mut self.out, b'A');
        self.out.put_i32(pid);
        self.out.put_slice(channel);
        self.out.put_u8(0);
        self.out.put_slice(&self.value);
        self.out.put_u8(0);
        finish(&mut self.out, s);
        Ok(Some(self.out.split()))
    }
}

/// Error and notice fields that carry free text (and so possibly values).
fn masked_field(f: u8) -> bool {
    matches!(f, b'M' | b'D' | b'H' | b'W' | b'q')
}

fn hit_means_null(m: Masked) -> Value {
    match m {
        Masked::Clean => Value::Keep,
        _ => Value::Null,
    }
}

impl SessionMasking {
    /// Masks a FunctionCallResponse: a result with a hit is sent as NULL
    /// (its type is unknown here, so no mask could be written in its place).
    pub(crate) fn function_result(
        &mut self,
        body: &[u8],
        tally: &mut MaskTally,
    ) -> Result<Option<BytesMut>, MaskFailure> {
        let mut c = Cursor::new(body);
        let len = c
            .i32("result length")
            .map_err(|_| MaskFailure("the backend sent a malformed function result".into()))?;
        if len < 0 {
            return Ok(None);
        }
        self.value.clear();
        if self.engine.mask_text(
            c.remaining(),
            TextKind::Plain,
            &mut self.value,
            &mut self.scratch,
            tally,
        ) == Masked::Clean
        {
            return Ok(None);
        }
        let s = begin(&mut self.out, b'V');
        self.out.put_i32(-1);
        finish(&mut self.out, s);
        Ok(Some(self.out.split()))
    }

    /// Masks text the gateway keeps in its records (statement text,
    /// parameters, error messages). Not counted in the result summary.
    pub(crate) fn mask_for_record<'a>(&mut self, s: &'a str) -> std::borrow::Cow<'a, str> {
        let mut tally = MaskTally::default();
        self.engine.mask_str(s, &mut self.scratch, &mut tally)
    }

    /// [`mask_for_record`](Self::mask_for_record) of an owned string: a
    /// clean one is returned as it is, without a copy.
    pub(crate) fn mask_owned(&mut self, s: String) -> String {
        match self.mask_for_record(&s) {
            std::borrow::Cow::Owned(masked) => masked,
            std::borrow::Cow::Borrowed(_) => s,
        }
    }

    /// An error message as a record keeps it: quoted values redacted under
    /// column rules (as the client saw it), then masked.
    pub(crate) fn mask_error_message(&mut self, message: String) -> String {
        let message = match self.has_rules() {
            true => super::errors::redact_values(b'M', message.as_bytes())
                .and_then(|v| String::from_utf8(v).ok())
                .unwrap_or(message),
            false => message,
        };
        self.mask_owned(message)
    }
}
