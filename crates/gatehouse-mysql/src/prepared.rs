//! Server-side prepared statements (`COM_STMT_*`). A statement is read and
//! checked when it is prepared (one the policy refuses outright is never
//! prepared); each execution is decided with its parameters, which an
//! approval is bound to (their types too), in the database that was
//! current when it was prepared (where the server runs it), and its binary
//! rows are masked.
//!
//! The gateway keeps what the server will execute with: long data sent
//! for a parameter (which the server uses whatever the NULL bit says), and
//! the parameter types last bound. Both change only when an execution
//! reaches the server; a refused execution resets the statement on the
//! server too, so long data cannot wait there for a later execution.

use crate::codec::binary::{self, LongData, ParamType};
use crate::codec::command::Command;
use crate::codec::write_message;
use crate::gate::Resolved;
use crate::results::{Relay, Rows};
use crate::session::{End, MysqlSession};
use crate::sql::MysqlStatement;
use crate::statement::{Run, Shape};
use crate::{refusals, MysqlError};
use gatehouse_policy::{Decision, PolicyMode};
use gatehouse_session::gate::Refusal;
use gatehouse_session::recording::mask_for_record;
use std::collections::HashMap;
use std::sync::Arc;

/// The longest parameter value records keep (longer ones are cut).
const RECORDED_PARAM: usize = 1024;
/// Prepared statements one session may hold at once.
const MAX_PREPARED: usize = 1024;

/// A session's prepared statements, by the server's id.
#[derive(Default)]
pub(crate) struct Statements {
    by_id: HashMap<u32, Prepared>,
    /// Long data held for all of them, in bytes.
    long_data_bytes: usize,
}

/// One prepared statement.
struct Prepared {
    st: Arc<MysqlStatement>,
    text: String,
    /// The database current when it was prepared: where the server runs it.
    database: String,
    params: usize,
    /// The parameter types the server last bound (an execution may reuse them).
    types: Vec<ParamType>,
    /// What `COM_STMT_SEND_LONG_DATA` sent since the last execution.
    long_data: LongData,
    /// The server counted other parameters than the analysis: refused.
    mismatch: Option<(usize, usize)>,
}

impl Statements {
    /// Forgets them all (`COM_RESET_CONNECTION`).
    pub(crate) fn clear(&mut self) {
        self.by_id.clear();
        self.long_data_bytes = 0;
    }

    fn drop_long_data(&mut self, id: u32) {
        if let Some(p) = self.by_id.get_mut(&id) {
            let held: usize = p.long_data.values().map(Vec::len).sum();
            self.long_data_bytes -= held.min(self.long_data_bytes);
            p.long_data.clear();
        }
    }
}

impl MysqlSession {
    /// `COM_STMT_PREPARE`.
    pub(crate) async fn stmt_prepare(
        &mut self,
        seq: u8,
        payload: &[u8],
    ) -> Result<Option<End>, MysqlError> {
        let Ok(text) = std::str::from_utf8(&payload[1..]) else {
            let reason = "the statement is not valid UTF-8";
            let recorded = String::from_utf8_lossy(&payload[1..]).into_owned();
            let recorded = self.recorded(&recorded, None);
            let err = refusals::unanalysable(reason);
            return self
                .refuse_unread(seq, recorded, reason, err, "extended")
                .await;
        };
        if self.prepared.by_id.len() >= MAX_PREPARED {
            let why = format!(
                "this session holds {MAX_PREPARED} prepared statements, the most it may; close some"
            );
            return self.refuse_command(seq, Command::StmtPrepare, &why).await;
        }
        let text = text.to_string();
        let (st, database) = match self.read(seq, &text, "extended").await? {
            Ok(read) => (read.st, read.database),
            Err(end) => return Ok(end),
        };
        // A statement the policy refuses whatever its parameters is never
        // prepared; one that needs approval is decided at each execution.
        if self.gw.settings.policy.mode() == PolicyMode::Enforce {
            if let Decision::Deny { reason, policies } =
                self.gate.decision(&st, &database, "extended", false)
            {
                let recorded = self.recorded(&text, Some(&st));
                let err = refusals::refused(&Refusal::Denied {
                    reason: reason.clone(),
                    policies,
                });
                return self
                    .refuse_unread(seq, recorded, &reason, err, "extended")
                    .await;
            }
        }
        self.forward(payload).await?;
        let mut relay = Relay::new(
            &mut self.caller.wire,
            &mut self.backend,
            &mut self.out,
            seq,
            self.mask.as_ref(),
        );
        let answer = relay.prepared().await?;
        self.session.counters().written(relay.sent() as usize);
        if let Ok(ok) = answer {
            let params = usize::from(ok.params);
            // The server's count and the analysis's must agree, or they did
            // not read the same statement.
            let mismatch = (st.placeholders != params).then_some((st.placeholders, params));
            self.prepared.by_id.insert(
                ok.statement_id,
                Prepared {
                    st,
                    text,
                    database,
                    params,
                    types: Vec::new(),
                    long_data: LongData::new(),
                    mismatch,
                },
            );
        }
        Ok(None)
    }

    /// `COM_STMT_EXECUTE`: decided with its parameters.
    pub(crate) async fn stmt_execute(
        &mut self,
        seq: u8,
        payload: &[u8],
    ) -> Result<Option<End>, MysqlError> {
        let Some((id, cursor)) = binary::execute_head(payload) else {
            return Ok(Some(End::ProtocolError));
        };
        if cursor != 0 {
            return self
                .refuse_command(
                    seq,
                    Command::StmtExecute,
                    "server-side cursors do not pass the gateway; fetch the whole result",
                )
                .await;
        }
        let Some(p) = self.prepared.by_id.get(&id) else {
            let why =
                format!("statement {id} was not prepared through the gateway in this session");
            return self.refuse_command(seq, Command::StmtExecute, &why).await;
        };
        if let Some((analysed, server)) = p.mismatch {
            let why = format!(
                "the gateway read {analysed} parameters in this statement and the server \
                 {server}: they did not read the same statement, so it is not run"
            );
            return self.refuse_command(seq, Command::StmtExecute, &why).await;
        }
        let parsed = binary::execute_params(payload, p.params, &p.types, &p.long_data);
        let (st, text, database) = (p.st.clone(), p.text.clone(), p.database.clone());
        let Some((types, values)) = parsed else {
            let reason = "the execution's parameters could not be read";
            let recorded = self.recorded(&text, None);
            let err = refusals::unanalysable(reason);
            self.reset_on_server(id).await?;
            return self
                .refuse_unread(seq, recorded, reason, err, "extended")
                .await;
        };
        let record_masking = &self.gw.settings.record_masking;
        let params = values
            .iter()
            .zip(&types)
            .map(|(v, (t, unsigned))| {
                v.as_ref()
                    .map(|v| mask_for_record(record_masking, &recorded_param(*t, *unsigned, v)))
            })
            .collect();
        // What an approval is bound to: each value with its type.
        let bound = values
            .iter()
            .zip(&types)
            .map(|(v, (t, unsigned))| {
                v.as_ref().map(|v| {
                    let mut b = Vec::with_capacity(v.len() + 2);
                    b.extend_from_slice(&[*t, u8::from(*unsigned)]);
                    b.extend_from_slice(v);
                    b
                })
            })
            .collect();
        let run = Run {
            st,
            database,
            resolved: Resolved::Itself,
            approved_text: text.clone(),
            text: &text,
            params,
            bound,
            flavour: "extended",
            shape: Shape::Results(Rows::Binary),
        };
        let ran = self.decide_and_run(seq, payload, run).await?;
        if ran.forwarded {
            // The server used (and dropped) the long data, and bound these
            // types unless it failed first: then the next execution must
            // send its types again.
            self.prepared.drop_long_data(id);
            if let Some(p) = self.prepared.by_id.get_mut(&id) {
                p.types = if ran.failed { Vec::new() } else { types };
            }
        } else if ran.end.is_none() {
            self.reset_on_server(id).await?;
        }
        Ok(ran.end)
    }

    /// Drops a statement's long data here and on the server (after an
    /// execution that did not reach it), so none waits for a later one.
    async fn reset_on_server(&mut self, id: u32) -> Result<(), MysqlError> {
        self.prepared.drop_long_data(id);
        let mut reset = vec![0x1A];
        reset.extend_from_slice(&id.to_le_bytes());
        write_message(&mut self.backend.wire, 0, &reset).await?;
        // Its answer (OK, or an error for a statement the server dropped)
        // is the gateway's own.
        let _ = self.backend.reader.message(&mut self.backend.wire).await?;
        Ok(())
    }

    /// `COM_STMT_SEND_LONG_DATA`: kept for the execution's decision and
    /// passed on (the server only buffers it); no answer. For a statement
    /// or parameter the gateway did not prepare, dropped (MariaDB reads id
    /// 0xFFFFFFFF as "the last prepared"; nothing passes unread).
    pub(crate) async fn stmt_long_data(
        &mut self,
        payload: &[u8],
    ) -> Result<Option<End>, MysqlError> {
        let head = payload.get(1..7).map(|b| {
            (
                u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
                u16::from_le_bytes([b[4], b[5]]),
            )
        });
        let Some((id, param)) = head else {
            return Ok(Some(End::ProtocolError));
        };
        let max = self.gw.settings.max_message;
        let data = &payload[7..];
        let Some(p) = self
            .prepared
            .by_id
            .get_mut(&id)
            .filter(|p| usize::from(param) < p.params)
        else {
            tracing::debug!(
                id,
                param,
                "mysql: long data for no prepared parameter; dropped"
            );
            return Ok(None);
        };
        // One budget for all of a session's long data.
        if self.prepared.long_data_bytes + data.len() > max {
            return Ok(Some(End::LimitExceeded));
        }
        p.long_data
            .entry(param)
            .or_default()
            .extend_from_slice(data);
        self.prepared.long_data_bytes += data.len();
        self.forward(payload).await?;
        Ok(None)
    }

    /// `COM_STMT_CLOSE`: forgotten and passed on; no answer. One the
    /// gateway did not prepare is dropped.
    pub(crate) async fn stmt_close(&mut self, payload: &[u8]) -> Result<Option<End>, MysqlError> {
        let Some(id) = payload
            .get(1..5)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        else {
            return Ok(Some(End::ProtocolError));
        };
        if !self.prepared.by_id.contains_key(&id) {
            return Ok(None);
        }
        self.prepared.drop_long_data(id);
        self.prepared.by_id.remove(&id);
        self.forward(payload).await?;
        Ok(None)
    }

    /// `COM_STMT_RESET`: long data dropped, here and on the server.
    pub(crate) async fn stmt_reset(
        &mut self,
        seq: u8,
        payload: &[u8],
    ) -> Result<Option<End>, MysqlError> {
        let id = payload
            .get(1..5)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        match id {
            Some(id) if self.prepared.by_id.contains_key(&id) => {
                self.prepared.drop_long_data(id);
                self.pass_through(seq, payload).await
            }
            _ => {
                let why =
                    "no statement of that id was prepared through the gateway in this session";
                self.refuse_command(seq, Command::StmtReset, why).await
            }
        }
    }
}

/// A parameter as records keep it: as text, cut at [`RECORDED_PARAM`].
fn recorded_param(t: u8, unsigned: bool, v: &[u8]) -> String {
    let mut s = binary::as_text(t, unsigned, v);
    if s.len() > RECORDED_PARAM {
        let mut cut = RECORDED_PARAM;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}
