//! Result plans: how each column of a result is masked, built from a
//! RowDescription (or a prepared statement's description and the Bind's
//! result formats) and the column rules.

use super::types::{treatment, Treatment};
use super::{PlanState, SessionMasking};
use crate::codec::{CodecError, Cursor};
use gatehouse_mask::SourceColumn;
use std::sync::Arc;

/// A result column as the backend describes it.
#[derive(Debug, Clone)]
pub(crate) struct Column {
    label: Box<str>,
    table: u32,
    attnum: i16,
    type_oid: u32,
    binary: bool,
}

/// Decodes a RowDescription body.
pub(crate) fn parse_row_description(body: &[u8]) -> Result<Arc<[Column]>, CodecError> {
    let mut c = Cursor::new(body);
    let n = c.count16("field count")?;
    let mut cols = Vec::with_capacity(n);
    for _ in 0..n {
        let label = c.cstr("field name")?;
        let table = c.i32("table oid")? as u32;
        let attnum = c.i16("column number")?;
        let type_oid = c.i32("type oid")? as u32;
        c.i16("type size")?;
        c.i32("type modifier")?;
        let format = c.i16("format code")?;
        cols.push(Column {
            label: label.into(),
            table,
            attnum,
            type_oid,
            binary: format == 1,
        });
    }
    Ok(cols.into())
}

/// Result formats a Bind asked for.
#[derive(Debug, Clone, Default)]
pub(crate) enum ResultFormats {
    /// All text (no codes, or one code 0).
    #[default]
    AllText,
    /// All binary (one code 1).
    AllBinary,
    /// One code per column.
    PerColumn(Arc<[bool]>),
}

impl ResultFormats {
    /// From the Bind's result-format codes (big-endian i16 pairs).
    pub(crate) fn from_codes(codes: &[u8]) -> Self {
        let code = |i: usize| i16::from_be_bytes([codes[2 * i], codes[2 * i + 1]]) == 1;
        match codes.len() / 2 {
            0 => ResultFormats::AllText,
            1 if code(0) => ResultFormats::AllBinary,
            1 => ResultFormats::AllText,
            n => ResultFormats::PerColumn((0..n).map(code).collect()),
        }
    }

    fn binary(&self, i: usize) -> bool {
        match self {
            ResultFormats::AllText => false,
            ResultFormats::AllBinary => true,
            ResultFormats::PerColumn(v) => v.get(i).copied().unwrap_or(false),
        }
    }
}

/// How one column is masked.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ColumnPlan {
    pub(super) treatment: Treatment,
    /// The column rule covering it.
    pub(super) rule: Option<usize>,
    /// The table column it comes from (table OID, column number), when a
    /// detector's hit would make it a found sensitive column.
    pub(super) origin: Option<(u32, i16)>,
}

/// How every column of a result is masked.
#[derive(Debug)]
pub(crate) struct ResultPlan {
    pub(super) columns: Vec<ColumnPlan>,
    /// Some column needs looking at; otherwise rows pass untouched.
    pub(super) any: bool,
}

impl SessionMasking {
    /// The plan for a result with these columns; `formats` overrides the
    /// formats in the description (a statement described before its Bind).
    pub(crate) fn plan(&mut self, cols: &[Column], formats: Option<&ResultFormats>) -> PlanState {
        let rules = !self.engine.rules().is_empty();
        let discovering = self.discovery().is_some();
        if let Some(e) = self.catalog_error.take() {
            return PlanState::Failed(format!(
                "the column names of this result could not be looked up in the catalog: {e}"
            ));
        }
        if rules || discovering {
            self.refresh_tables();
            for c in cols {
                if c.table != 0
                    && !self.tables.contains_key(&c.table)
                    && !self.wanted.oids.contains(&c.table)
                {
                    self.wanted.oids.push(c.table);
                }
            }
            if !self.wanted.is_empty() {
                return PlanState::Wait;
            }
        }
        let ip = self.engine.ip_detector().is_some();
        let mut any = false;
        let columns = cols
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let binary = formats.map_or(c.binary, |f| f.binary(i));
                let treatment = treatment(c.type_oid, binary, ip);
                let rule = if rules {
                    let table = self.tables.get(&c.table);
                    let source = table.and_then(|t| {
                        t.column(c.attnum).map(|column| SourceColumn {
                            schema: &t.schema,
                            table: &t.name,
                            column,
                        })
                    });
                    self.engine.rule_for(source.as_ref(), &c.label)
                } else {
                    None
                };
                any |= rule.is_some() || treatment != Treatment::Skip;
                // Only for a column not yet known sensitive.
                let origin = (discovering
                    && rule.is_none()
                    && treatment != Treatment::Skip
                    && c.attnum > 0
                    && !self.known_sensitive(c.table, c.attnum))
                .then_some((c.table, c.attnum));
                ColumnPlan {
                    treatment,
                    rule,
                    origin,
                }
            })
            .collect();
        PlanState::Ready(ResultPlan { columns, any })
    }
}

impl SessionMasking {
    /// Whether column `attnum` of table `oid` is a found sensitive column
    /// (an unknown table's is not).
    fn known_sensitive(&self, oid: u32, attnum: i16) -> bool {
        let (Some(d), Some(t)) = (self.discovery(), self.tables.get(&oid)) else {
            return false;
        };
        t.column(attnum)
            .is_some_and(|column| d.knows(&t.schema, &t.name, column))
    }
}
