//! Relays what the server answers a command with, frame by frame with one
//! write to the caller per read from the server, and masks text result
//! rows on the way: a column rule by the column's origin (the table and
//! column its definition names), the detectors in every text column.
//! Sequence numbers are the gateway's own towards the caller, so a row
//! masked longer or shorter (or split anew) stays in order.

mod binary_rows;

use crate::backend::Backend;
use crate::codec::binary;
use crate::codec::result::{self, Column};
use crate::codec::wire::{put_lenenc_bytes, Cursor};
use crate::codec::{put_message, status, HEADER, MAX_PAYLOAD};
use crate::io::Wire;
use crate::MysqlError;
use bytes::BytesMut;
use gatehouse_core::MaskingSummary;
use gatehouse_mask::{MaskTally, Masked, MaskingEngine, Scratch, SourceColumn, TextKind};
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

/// How a command's answer ended.
#[derive(Debug, Default)]
pub(crate) struct Answered {
    /// `OK` / `SELECT` per result, with their counts.
    pub(crate) tags: Vec<String>,
    /// Rows returned or affected, summed.
    pub(crate) rows: u64,
    /// The server's error, when it ended in one: SQLSTATE and message.
    pub(crate) error: Option<(String, String)>,
    /// What masking did.
    pub(crate) masking: Option<MaskingSummary>,
    /// The server's status flags in its last OK or EOF.
    pub(crate) status: Option<u16>,
}

/// How one result column's values are masked.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Plan {
    Clear,
    Detect,
    Rule(usize),
}

/// A result column as masking needs it.
#[derive(Clone, Copy)]
pub(super) struct Col {
    pub(super) plan: Plan,
    pub(super) column_type: u8,
    pub(super) unsigned: bool,
}

/// How a result's rows are encoded.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rows {
    /// `COM_QUERY`: every value a length-encoded string.
    Text,
    /// `COM_STMT_EXECUTE`: a NULL bitmap, then each value in its type's encoding.
    Binary,
}

/// Masking for one session's results.
pub(crate) struct ResultMask {
    pub(crate) engine: Arc<MaskingEngine>,
}

/// A message from the server: one frame in place, a long one joined, or
/// a long one already passed on unread.
enum Message {
    Frame(BytesMut),
    Joined(Vec<u8>),
    Passed,
}

impl Message {
    fn payload(&self) -> &[u8] {
        match self {
            Self::Frame(f) => &f[HEADER..],
            Self::Joined(p) => p,
            Self::Passed => &[],
        }
    }
}

/// The relay of one command's answer.
pub(crate) struct Relay<'a> {
    caller: &'a mut Wire,
    backend: &'a mut Backend,
    /// The session's output buffer, lent (empty) for this answer.
    out: &'a mut BytesMut,
    seq: u8,
    mask: Option<&'a ResultMask>,
    tally: Option<MaskTally>,
    scratch: Scratch,
    sent: u64,
    /// The longest message joined to be masked.
    max_joined: usize,
    /// The server's error texts are replaced (they may quote a masked
    /// column's values).
    withhold_errors: bool,
    /// The sequence number of the server's last packet.
    backend_seq: u8,
}

impl<'a> Relay<'a> {
    /// `seq`: the sequence number of the caller's command; `out`: the
    /// session's output buffer (kept between commands: no allocation per
    /// answer).
    pub(crate) fn new(
        caller: &'a mut Wire,
        backend: &'a mut Backend,
        out: &'a mut BytesMut,
        seq: u8,
        mask: Option<&'a ResultMask>,
    ) -> Self {
        out.clear();
        Self {
            caller,
            backend,
            out,
            seq: seq.wrapping_add(1),
            tally: mask.map(|m| m.engine.tally()),
            mask,
            scratch: Scratch::default(),
            sent: 0,
            max_joined: DEFAULT_MAX_JOINED,
            withhold_errors: false,
            backend_seq: 0,
        }
    }

    /// Masks rows of at most `max` bytes; a longer one ends the session.
    pub(crate) fn with_max_row(mut self, max: usize) -> Self {
        self.max_joined = max;
        self
    }

    /// Replaces the server's error texts with their number and SQLSTATE
    /// (for statements that touch a masked column: `Truncated incorrect
    /// DOUBLE value: '<the value>'`).
    pub(crate) fn withholding_errors(mut self, withhold: bool) -> Self {
        self.withhold_errors = withhold;
        self
    }

    /// Passes the server's error on (or its replacement) and notes it.
    fn pass_error(&mut self, m: Message, e: result::Err, answered: &mut Answered) {
        if !self.withhold_errors {
            answered.error = Some((e.sqlstate, e.message));
            self.pass(m);
            return;
        }
        let message = format!(
            "gatehouse: the server's error {} is withheld: this statement touches a masked \
             column, whose values the server's message may quote",
            e.code
        );
        let replaced = result::Err {
            code: e.code,
            sqlstate: e.sqlstate.clone(),
            message: message.clone(),
        };
        self.put(&replaced.encode());
        answered.error = Some((e.sqlstate, message));
    }

    /// Bytes written to the caller.
    pub(crate) fn sent(&self) -> u64 {
        self.sent
    }

    /// The next message; what is gathered for the caller is written first
    /// when the server has nothing more buffered. A message longer than one
    /// packet is joined (up to `max_joined` bytes) only where it is masked
    /// (`join`); otherwise its packets go straight on ([`Message::Passed`]).
    async fn next_message(&mut self, join: bool) -> Result<Message, MysqlError> {
        let mut joined: Option<Vec<u8>> = None;
        let mut passing = false;
        loop {
            let Some(frame) = self.backend.reader.frame() else {
                self.flush().await?;
                self.backend.reader.fill(&mut self.backend.wire).await?;
                continue;
            };
            let long = frame.len() - HEADER == MAX_PAYLOAD;
            self.backend_seq = frame[3];
            if passing {
                self.pass(Message::Frame(frame));
                if !long {
                    return Ok(Message::Passed);
                }
                continue;
            }
            match (joined.as_mut(), long) {
                (None, false) => return Ok(Message::Frame(frame)),
                (None, true) if !join => {
                    passing = true;
                    self.pass(Message::Frame(frame));
                }
                (None, true) => joined = Some(frame[HEADER..].to_vec()),
                (Some(j), _) => {
                    if j.len() + frame.len() > self.max_joined {
                        return Err(MysqlError::RowTooLarge(self.max_joined));
                    }
                    j.extend_from_slice(&frame[HEADER..]);
                    if !long {
                        return Ok(Message::Joined(joined.unwrap_or_default()));
                    }
                }
            }
        }
    }

    /// The next message, joined if long (headers, definitions, OK, ERR).
    async fn next(&mut self) -> Result<Message, MysqlError> {
        self.next_message(true).await
    }

    /// Sends `m` on to the caller as it came.
    fn pass(&mut self, m: Message) {
        match m {
            Message::Frame(mut f) => {
                f[3] = self.seq;
                self.seq = self.seq.wrapping_add(1);
                self.out.extend_from_slice(&f);
            }
            Message::Joined(p) => self.put(&p),
            Message::Passed => {}
        }
    }

    /// Sends a payload of the gateway's own making.
    pub(crate) fn put(&mut self, payload: &[u8]) {
        self.seq = put_message(self.out, self.seq, payload);
    }

    /// Writes what is gathered.
    pub(crate) async fn flush(&mut self) -> Result<(), MysqlError> {
        if !self.out.is_empty() {
            self.caller.write_all(self.out).await?;
            // TLS may hold written bytes back until flushed.
            self.caller.flush().await?;
            self.sent += self.out.len() as u64;
            self.out.clear();
        }
        Ok(())
    }

    /// Relays the answer to a command that gets one OK or ERR (or, for
    /// `COM_STATISTICS`, a string).
    pub(crate) async fn single(&mut self) -> Result<Answered, MysqlError> {
        let m = self.next().await?;
        let mut answered = Answered::default();
        if let Some(e) = result::Err::parse(m.payload()) {
            self.pass_error(m, e, &mut answered);
        } else {
            if let Some(ok) = result::Ok::parse(m.payload()) {
                answered.tags.push(format!("OK {}", ok.affected_rows));
                answered.status = Some(ok.status);
            }
            self.pass(m);
        }
        self.flush().await?;
        Ok(answered)
    }

    /// Runs a row masker with the session's engine, tally and scratch
    /// (a row goes as it came when nothing masks).
    fn with_masker(
        &mut self,
        f: impl FnOnce(&MaskingEngine, &mut MaskTally, &mut Scratch) -> Option<Option<Vec<u8>>>,
    ) -> Option<Option<Vec<u8>>> {
        match (self.mask, self.tally.as_mut()) {
            (Some(mask), Some(tally)) => f(&mask.engine, tally, &mut self.scratch),
            _ => Some(None),
        }
    }

    /// Relays a `COM_STMT_PREPARE`'s answer: the statement's id and shape
    /// (then its parameter and column definitions), or the server's error.
    pub(crate) async fn prepared(
        &mut self,
    ) -> Result<Result<binary::PrepareOk, (String, String)>, MysqlError> {
        let m = self.next().await?;
        if let Some(e) = result::Err::parse(m.payload()) {
            self.pass(m);
            self.flush().await?;
            return Ok(Err((e.sqlstate, e.message)));
        }
        let ok = binary::PrepareOk::parse(m.payload()).ok_or_else(|| {
            MysqlError::Backend("sent a malformed COM_STMT_PREPARE answer".into())
        })?;
        self.pass(m);
        for (n, columns) in [(ok.params, false), (ok.columns, true)] {
            if n == 0 {
                continue;
            }
            // The definitions, then an EOF. Result columns a rule masks
            // are announced as text, as the execution's will be.
            for _ in 0..n {
                let m = self.next().await?;
                self.pass_definition(m, columns);
            }
            let eof = self.next().await?;
            self.pass(eof);
        }
        self.flush().await?;
        Ok(Ok(ok))
    }

    /// Relays column definitions up to their EOF (`COM_FIELD_LIST`), or an ERR.
    pub(crate) async fn field_list(&mut self) -> Result<Answered, MysqlError> {
        let mut answered = Answered::default();
        loop {
            let m = self.next().await?;
            let p = m.payload();
            let end = result::is_eof(p);
            if let Some(e) = result::Err::parse(p) {
                self.pass_error(m, e, &mut answered);
                break;
            }
            self.pass(m);
            if end {
                break;
            }
            answered.rows += 1;
        }
        self.flush().await?;
        answered.tags.push(format!("FIELDS {}", answered.rows));
        Ok(answered)
    }

    /// Relays a query's answer: results (several, for a procedure) of OKs
    /// and result sets, or an ERR; masks the rows.
    pub(crate) async fn query(&mut self, rows: Rows) -> Result<Answered, MysqlError> {
        let mut answered = Answered::default();
        loop {
            let m = self.next().await?;
            let p = m.payload();
            let more = match p.first() {
                Some(&result::OK) => {
                    let ok = result::Ok::parse(p).unwrap_or_default();
                    answered.status = Some(ok.status);
                    answered.tags.push(format!("OK {}", ok.affected_rows));
                    answered.rows += ok.affected_rows;
                    self.pass(m);
                    ok.status & status::MORE_RESULTS_EXISTS != 0
                }
                Some(&result::ERR) => {
                    match result::Err::parse(p) {
                        Some(e) => self.pass_error(m, e, &mut answered),
                        None => self.pass(m),
                    }
                    false
                }
                Some(&result::LOCAL_INFILE) if p.len() > 1 => {
                    self.refuse_local_infile().await?;
                    answered.error = Some(("HY000".into(), LOCAL_INFILE_REFUSED.into()));
                    false
                }
                _ => self.result_set(m, &mut answered, rows).await?,
            };
            if !more {
                break;
            }
        }
        self.flush().await?;
        if let (Some(mask), Some(tally)) = (self.mask, self.tally.take()) {
            if !tally.is_empty() {
                let (detectors, rules) = tally.named(&mask.engine);
                answered.masking = Some(MaskingSummary {
                    values_masked: tally.total(),
                    detectors,
                    rules,
                    exempt_group: None,
                });
            }
        }
        Ok(answered)
    }

    /// A server asked the caller for a file (it was never offered
    /// LOCAL_FILES, so this is a misbehaving server): it gets an empty
    /// file, its answer is dropped, and the caller an error.
    async fn refuse_local_infile(&mut self) -> Result<(), MysqlError> {
        let next = self.backend_seq.wrapping_add(1);
        crate::codec::write_message(&mut self.backend.wire, next, &[]).await?;
        let _ = self.backend.reader.message(&mut self.backend.wire).await?;
        let e = crate::refusals::denied(LOCAL_INFILE_REFUSED);
        self.put(&e.encode());
        Ok(())
    }

    /// One result set: column count, definitions, EOF, rows, EOF (or ERR).
    /// Whether another result follows.
    async fn result_set(
        &mut self,
        first: Message,
        answered: &mut Answered,
        encoding: Rows,
    ) -> Result<bool, MysqlError> {
        let count = Cursor::new(first.payload())
            .lenenc()
            .ok_or_else(|| MysqlError::Backend("sent a malformed result set".into()))?;
        self.pass(first);
        let mut plans = Vec::new();
        for _ in 0..count {
            let m = self.next().await?;
            let column = Column::parse(m.payload())
                .ok_or_else(|| MysqlError::Backend("sent a malformed column definition".into()))?;
            let plan = self.plan(&column);
            self.pass_column(m, &column, plan);
            plans.push(Col {
                plan,
                column_type: column.column_type,
                unsigned: column.flags & binary::UNSIGNED_FLAG != 0,
            });
        }
        let eof = self.next().await?;
        self.pass(eof);
        let masking = plans.iter().any(|c| c.plan != Plan::Clear);
        let mut rows = 0u64;
        loop {
            let m = self.next_message(masking).await?;
            if matches!(m, Message::Passed) {
                rows += 1;
                continue;
            }
            let p = m.payload();
            if result::is_eof(p) {
                let st = result::eof_status(p).unwrap_or(0);
                answered.status = Some(st);
                self.pass(m);
                answered.tags.push(format!("SELECT {rows}"));
                answered.rows += rows;
                return Ok(st & status::MORE_RESULTS_EXISTS != 0);
            }
            if let Some(e) = result::Err::parse(p) {
                self.pass_error(m, e, answered);
                answered.rows += rows;
                return Ok(false);
            }
            rows += 1;
            if !masking {
                self.pass(m);
                continue;
            }
            let masked = match encoding {
                Rows::Text => Masking::from(
                    self.with_masker(|e, t, sc| text_row(e, t, sc, m.payload(), &plans)),
                ),
                Rows::Binary => Masking::from(self.with_masker(|e, t, sc| {
                    binary_rows::binary_row(e, t, sc, m.payload(), &plans)
                })),
            };
            match masked {
                Masking::Masked(masked) => self.put(&masked),
                Masking::Clean => self.pass(m),
                // A row the gateway cannot read is not passed unmasked.
                Masking::Unreadable => {
                    return Err(MysqlError::Backend(
                        "sent a result row the gateway could not read".into(),
                    ))
                }
            }
        }
    }

    /// Passes a column definition on; one a rule masks is announced as
    /// text when it is a number or a date (the client reads the masked
    /// value as text).
    fn pass_column(&mut self, m: Message, column: &Column, plan: Plan) {
        match (plan, m) {
            (Plan::Rule(_), Message::Frame(mut f)) if !column.is_textual() => {
                column.retype_as_text(&mut f[HEADER..]);
                self.pass(Message::Frame(f));
            }
            (_, m) => self.pass(m),
        }
    }

    /// A prepared statement's parameter (`columns` false) or result
    /// column definition, passed on as [`Self::pass_column`] does.
    fn pass_definition(&mut self, m: Message, columns: bool) {
        let column = columns.then(|| Column::parse(m.payload())).flatten();
        match column {
            Some(c) => {
                let plan = self.plan(&c);
                self.pass_column(m, &c, plan);
            }
            None => self.pass(m),
        }
    }

    fn plan(&self, column: &Column) -> Plan {
        let Some(mask) = self.mask else {
            return Plan::Clear;
        };
        let source =
            (!column.org_table.is_empty() && !column.org_name.is_empty()).then(|| SourceColumn {
                schema: &column.schema,
                table: &column.org_table,
                column: &column.org_name,
            });
        match mask.engine.rule_for(source.as_ref(), &column.name) {
            Some(rule) => Plan::Rule(rule),
            None if column.is_textual() => Plan::Detect,
            None => Plan::Clear,
        }
    }
}

/// The row masked (`Some(Some)`), as it came (`Some(None)`: nothing in
/// it needed masking), or `None` when it could not be read.
pub(super) fn text_row(
    engine: &MaskingEngine,
    tally: &mut MaskTally,
    scratch: &mut Scratch,
    payload: &[u8],
    plans: &[Col],
) -> Option<Option<Vec<u8>>> {
    let mut c = Cursor::new(payload);
    let mut out: Option<Vec<u8>> = None;
    let mut value_buf = Vec::new();
    for col in plans {
        let before = payload.len() - c.rest().len();
        let value = c.row_value()?;
        let masked =
            value.and_then(|v| mask_value(engine, col.plan, v, &mut value_buf, scratch, tally));
        match masked {
            Some(m) => {
                let o = out.get_or_insert_with(|| {
                    let mut o = Vec::with_capacity(payload.len() + 16);
                    // Every column before this one, as it came.
                    o.extend_from_slice(&payload[..before]);
                    o
                });
                match m {
                    Masked::Null => o.push(0xFB),
                    _ => put_lenenc_bytes(o, &value_buf),
                }
            }
            None => {
                if let Some(o) = out.as_mut() {
                    let after = payload.len() - c.rest().len();
                    o.extend_from_slice(&payload[before..after]);
                }
            }
        }
    }
    if !c.is_empty() {
        return None;
    }
    Some(out)
}

/// What masking made of a row.
enum Masking {
    /// Rewritten.
    Masked(Vec<u8>),
    /// Nothing in it needed masking: it goes as it came.
    Clean,
    /// It could not be read: it must not go on.
    Unreadable,
}

impl From<Option<Option<Vec<u8>>>> for Masking {
    fn from(r: Option<Option<Vec<u8>>>) -> Self {
        match r {
            Some(Some(m)) => Self::Masked(m),
            Some(None) => Self::Clean,
            None => Self::Unreadable,
        }
    }
}

/// Masks one value by its column's plan into `out`; `None` when it stays.
pub(super) fn mask_value(
    engine: &MaskingEngine,
    plan: Plan,
    v: &[u8],
    out: &mut Vec<u8>,
    scratch: &mut Scratch,
    tally: &mut MaskTally,
) -> Option<Masked> {
    out.clear();
    match plan {
        Plan::Clear => None,
        Plan::Rule(rule) => Some(engine.mask_by_rule(rule, v, out, tally)),
        Plan::Detect if !engine.may_mask(v) => None,
        Plan::Detect => {
            let m = engine.mask_text(v, TextKind::Plain, out, scratch, tally);
            (m != Masked::Clean).then_some(m)
        }
    }
}

/// The longest row masked unless [`Relay::with_max_row`] says otherwise.
const DEFAULT_MAX_JOINED: usize = 64 << 20;

const LOCAL_INFILE_REFUSED: &str =
    "the server asked for a file from the client (LOAD DATA LOCAL): the gateway never lets a \
     server read files from the client";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::wire::put_lenenc_bytes;
    use proptest::prelude::*;

    fn col(plan: Plan, column_type: u8) -> Col {
        Col {
            plan,
            column_type,
            unsigned: false,
        }
    }

    #[test]
    fn a_secret_in_a_text_row_is_masked_and_the_other_columns_kept() {
        let engine = MaskingEngine::secrets_only();
        let (mut tally, mut scratch) = (engine.tally(), Scratch::default());
        let secret = "AKIAIOSFODNN7EXAMPLE";
        let mut row = Vec::new();
        put_lenenc_bytes(&mut row, b"plain");
        put_lenenc_bytes(&mut row, secret.as_bytes());
        row.push(0xFB);
        let plans = [
            col(Plan::Detect, 0xFD),
            col(Plan::Detect, 0xFD),
            col(Plan::Detect, 0xFD),
        ];
        let masked = text_row(&engine, &mut tally, &mut scratch, &row, &plans)
            .expect("readable")
            .expect("masked");
        let mut c = Cursor::new(&masked);
        assert_eq!(c.row_value(), Some(Some(&b"plain"[..])));
        let second = c.row_value().unwrap().unwrap();
        assert!(!String::from_utf8_lossy(second).contains(secret));
        assert_eq!(c.row_value(), Some(None));
        // A row shorter than its columns is unreadable, never passed.
        assert_eq!(
            text_row(&engine, &mut tally, &mut scratch, &row[..3], &plans),
            None
        );
    }

    proptest! {
        #[test]
        fn row_maskers_never_panic_on_any_bytes(
            payload in proptest::collection::vec(any::<u8>(), 0..200),
            types in proptest::collection::vec(any::<u8>(), 0..8),
            detect in any::<bool>(),
        ) {
            let engine = MaskingEngine::secrets_only();
            let (mut tally, mut scratch) = (engine.tally(), Scratch::default());
            let plan = if detect { Plan::Detect } else { Plan::Clear };
            let cols: Vec<Col> = types.iter().map(|t| col(plan, *t)).collect();
            let _ = text_row(&engine, &mut tally, &mut scratch, &payload, &cols);
            let _ = binary_rows::binary_row(&engine, &mut tally, &mut scratch, &payload, &cols);
        }

        #[test]
        fn a_clean_text_row_comes_back_as_it_came(values in proptest::collection::vec(proptest::option::of("[a-z0-9 ]{0,40}"), 0..6)) {
            let engine = MaskingEngine::secrets_only();
            let (mut tally, mut scratch) = (engine.tally(), Scratch::default());
            let mut row = Vec::new();
            for v in &values {
                match v {
                    Some(v) => put_lenenc_bytes(&mut row, v.as_bytes()),
                    None => row.push(0xFB),
                }
            }
            let cols: Vec<Col> = values.iter().map(|_| col(Plan::Detect, 0xFD)).collect();
            prop_assert_eq!(text_row(&engine, &mut tally, &mut scratch, &row, &cols), Some(None));
        }
    }
}
