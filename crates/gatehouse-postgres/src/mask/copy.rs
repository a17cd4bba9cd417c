//! COPY TO STDOUT: each row is split into its fields by the COPY's own
//! options (taken from the statement), each field decoded as a COPY client
//! decodes it, masked (by the column rule covering it, else by the
//! detectors) and encoded again with the same options. Under column rules
//! the COPY's table and column list are resolved through the catalog, so
//! each field is known by its column.

mod syntax;

use super::{MaskFailure, PlanState, SessionMasking};
use crate::codec::write::{begin, finish};
use bytes::{BufMut, BytesMut};
use gatehouse_mask::{MaskTally, Masked, SourceColumn, TextKind};
use gatehouse_sql::CopyOut;
use syntax::{malformed, Syntax};

/// How one COPY's rows are masked.
#[derive(Debug)]
pub(crate) struct CopyPlan {
    syntax: Syntax,
    /// The rule covering each field, by position; empty when the fields are
    /// not matched to columns (no column rules, or `COPY (query)`), and then
    /// every field goes through the detectors.
    rules: Vec<Option<usize>>,
    /// With discovery: the table's OID and each field's column number, so a
    /// detector's hit makes that column a found sensitive one.
    origins: Option<(u32, Vec<i16>)>,
    /// The next row is the header line (column names, not values).
    header: bool,
}

impl SessionMasking {
    /// The plan for a COPY of `fields` columns.
    pub(crate) fn copy_plan(&mut self, copy: &CopyOut, fields: usize) -> PlanState<CopyPlan> {
        if let Some(e) = self.catalog_error.take() {
            return PlanState::Failed(format!(
                "the COPY's table could not be looked up in the catalog: {e}"
            ));
        }
        let syntax = match Syntax::of(copy) {
            Ok(s) => s,
            Err(e) => return PlanState::Failed(e),
        };
        let discovering = self.discovery().is_some();
        let table = match &copy.table {
            // COPY (query): the column guard let it through, so it reads no
            // covered column. Without column rules (or discovery) no field
            // needs its column.
            Some(table) if self.has_rules() || discovering => table,
            _ => {
                return PlanState::Ready(CopyPlan {
                    syntax,
                    rules: Vec::new(),
                    origins: None,
                    header: copy.header,
                })
            }
        };
        self.refresh_tables();
        let (oid, info) = match self.named.get(table) {
            None => {
                self.wanted.names.push(table.clone());
                return PlanState::Wait;
            }
            Some(Err(e)) => return PlanState::Failed(e.clone()),
            Some(Ok(oid)) => match self.tables.get(oid) {
                Some(info) => (*oid, info.clone()),
                None => {
                    self.named.remove(table);
                    self.wanted.names.push(table.clone());
                    return PlanState::Wait;
                }
            },
        };
        let columns: Vec<(i16, &str)> = if copy.columns.is_empty() {
            let stored: Vec<(i16, &str)> = info
                .columns
                .iter()
                .filter(|(n, _)| !info.generated.contains(n))
                .map(|(n, c)| (*n, c.as_str()))
                .collect();
            if stored.len() == fields {
                stored
            } else {
                // Servers that copy generated columns too.
                info.columns.iter().map(|(n, c)| (*n, c.as_str())).collect()
            }
        } else {
            let mut named = Vec::with_capacity(copy.columns.len());
            for c in &copy.columns {
                match info.columns.iter().find(|(_, n)| n == c) {
                    Some((attnum, n)) => named.push((*attnum, n.as_str())),
                    None => {
                        return PlanState::Failed(format!(
                            "column {c:?} of {}.{} was not found in the catalog",
                            info.schema, info.name
                        ))
                    }
                }
            }
            named
        };
        if columns.len() != fields {
            return PlanState::Failed(format!(
                "the COPY sends {fields} columns, but {}.{} has {} to send",
                info.schema,
                info.name,
                columns.len()
            ));
        }
        let rules: Vec<Option<usize>> = columns
            .iter()
            .map(|(_, column)| {
                let source = SourceColumn {
                    schema: &info.schema,
                    table: &info.name,
                    column,
                };
                self.engine.rule_for(Some(&source), column)
            })
            .collect();
        let origins = discovering.then(|| (oid, columns.iter().map(|(n, _)| *n).collect()));
        PlanState::Ready(CopyPlan {
            syntax,
            rules,
            origins,
            header: copy.header,
        })
    }

    /// Masks one COPY row by `plan`: covered fields by rule, the others by
    /// the detectors, each decoded first. `None`: nothing to mask. A field
    /// that cannot be decoded, or a row whose fields do not match the
    /// plan's columns, is an error (the result is withheld).
    pub(crate) fn copy_row_by_plan(
        &mut self,
        plan: &mut CopyPlan,
        body: &[u8],
        tally: &mut MaskTally,
    ) -> Result<Option<BytesMut>, MaskFailure> {
        let header = std::mem::take(&mut plan.header);
        let syntax = &plan.syntax;
        let engine = self.engine.clone();
        // Fields a detector found something in (with discovery): field, detector.
        let mut hits: Vec<(usize, usize)> = Vec::new();
        // Bytes of `body` before this are in `self.value` (once a field changed).
        let mut copied = 0;
        let mut changed = false;
        let mut at = 0;
        let mut i = 0;
        loop {
            let (end, quoted) = syntax.field_end(body, at)?;
            let raw = &body[at..end];
            let rule = match plan.rules.get(i) {
                _ if header || plan.rules.is_empty() => None,
                Some(rule) => *rule,
                None => return Err(malformed()),
            };
            if quoted || raw != syntax.null.as_slice() {
                let v = syntax.value(raw, quoted, &mut self.decoded)?;
                self.field.clear();
                let masked = match rule {
                    Some(r) => engine.mask_by_rule(r, v, &mut self.field, tally),
                    None => {
                        tally.take_last_detector();
                        let m = engine.mask_text(
                            v,
                            TextKind::Plain,
                            &mut self.field,
                            &mut self.scratch,
                            tally,
                        );
                        if let (Some(d), Some(_)) = (tally.take_last_detector(), &plan.origins) {
                            if !header {
                                hits.push((i, d));
                            }
                        }
                        m
                    }
                };
                if masked != Masked::Clean {
                    if !changed {
                        self.value.clear();
                        changed = true;
                    }
                    self.value.extend_from_slice(&body[copied..at]);
                    match masked {
                        Masked::Null => self.value.extend_from_slice(&syntax.null),
                        _ => syntax.encode(&self.field, &mut self.value),
                    }
                    copied = end;
                }
            }
            i += 1;
            match body.get(end) {
                Some(&d) if d == syntax.delimiter => at = end + 1,
                // The row's end (a newline); anything else is a field count that does not match.
                _ => match &body[end..] {
                    b"\n" | b"\r\n" | b"" => break,
                    _ => return Err(malformed()),
                },
            }
        }
        if !header && !plan.rules.is_empty() && i != plan.rules.len() {
            return Err(malformed());
        }
        if let Some((oid, attnums)) = &plan.origins {
            for (field, detector) in hits {
                if let Some(&attnum) = attnums.get(field) {
                    self.detector_hit((*oid, attnum), detector);
                }
            }
        }
        if !changed {
            return Ok(None);
        }
        self.value.extend_from_slice(&body[copied..]);
        let s = begin(&mut self.out, b'd');
        self.out.put_slice(&self.value);
        finish(&mut self.out, s);
        Ok(Some(self.out.split()))
    }
}

#[cfg(test)]
mod tests;
