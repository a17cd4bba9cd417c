//! Server-side prepared statements (`COM_STMT_*`). A statement is read and
//! checked when it is prepared (one the policy refuses outright is never
//! prepared); each execution is decided with its parameters, which an
//! approval is bound to, and its binary rows are masked. Long data sent
//! for a parameter is part of what the execution is decided and recorded
//! with.

use crate::codec::binary::{self, ParamType};
use crate::codec::command::Command;
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

/// A session's prepared statements, by the server's id.
#[derive(Default)]
pub(crate) struct Statements {
    by_id: HashMap<u32, Prepared>,
}

/// One prepared statement.
struct Prepared {
    st: Arc<MysqlStatement>,
    text: String,
    params: usize,
    /// The parameter types last bound (an execution may reuse them).
    types: Vec<ParamType>,
    /// What `COM_STMT_SEND_LONG_DATA` sent per parameter since the last execution.
    long_data: Vec<Option<Vec<u8>>>,
}

impl Statements {
    /// Forgets them all (`COM_RESET_CONNECTION`).
    pub(crate) fn clear(&mut self) {
        self.by_id.clear();
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
        let text = text.to_string();
        let st = match self.read(seq, &text, "extended").await? {
            Ok(st) => st,
            Err(end) => return Ok(end),
        };
        // A statement the policy refuses whatever its parameters is never
        // prepared; one that needs approval is decided at each execution.
        if self.gw.settings.policy.mode() == PolicyMode::Enforce {
            if let Decision::Deny { reason, policies } = self.gate.decision(&st, "extended", false)
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
        let mut relay = Relay::new(&mut self.caller.wire, &mut self.backend, seq, None);
        let answer = relay.prepared().await?;
        self.session.counters().written(relay.sent() as usize);
        if let Ok(ok) = answer {
            let params = usize::from(ok.params);
            self.prepared.by_id.insert(
                ok.statement_id,
                Prepared {
                    st,
                    text,
                    params,
                    types: Vec::new(),
                    long_data: vec![None; params],
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
        let Some(p) = self.prepared.by_id.get_mut(&id) else {
            let why =
                format!("statement {id} was not prepared through the gateway in this session");
            return self.refuse_command(seq, Command::StmtExecute, &why).await;
        };
        let long_data = std::mem::replace(&mut p.long_data, vec![None; p.params]);
        let Some((types, values)) = binary::execute_params(payload, p.params, &p.types, &long_data)
        else {
            let reason = "the execution's parameters could not be read";
            let text = p.text.clone();
            let recorded = self.recorded(&text, None);
            let err = refusals::unanalysable(reason);
            return self
                .refuse_unread(seq, recorded, reason, err, "extended")
                .await;
        };
        p.types = types.clone();
        let (st, text) = (p.st.clone(), p.text.clone());
        let record_masking = &self.gw.settings.record_masking;
        let params = values
            .iter()
            .zip(&types)
            .map(|(v, (t, unsigned))| {
                v.as_ref().map(|v| {
                    let mut s = binary::as_text(*t, *unsigned, v);
                    if s.len() > RECORDED_PARAM {
                        let mut cut = RECORDED_PARAM;
                        while !s.is_char_boundary(cut) {
                            cut -= 1;
                        }
                        s.truncate(cut);
                        s.push('…');
                    }
                    mask_for_record(record_masking, &s)
                })
            })
            .collect();
        let run = Run {
            st,
            text: &text,
            params,
            bound: values,
            flavour: "extended",
            shape: Shape::Results(Rows::Binary),
        };
        self.decide_and_run(seq, payload, run).await
    }

    /// `COM_STMT_SEND_LONG_DATA`: kept for the execution's decision and
    /// passed on (the server only buffers it); no answer.
    pub(crate) async fn stmt_long_data(
        &mut self,
        payload: &[u8],
    ) -> Result<Option<End>, MysqlError> {
        let head = payload.get(1..7).map(|b| {
            (
                u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
                usize::from(u16::from_le_bytes([b[4], b[5]])),
            )
        });
        let Some((id, param)) = head else {
            return Ok(Some(End::ProtocolError));
        };
        let max = self.gw.settings.max_message;
        if let Some(slot) = self
            .prepared
            .by_id
            .get_mut(&id)
            .and_then(|p| p.long_data.get_mut(param))
        {
            let data = slot.get_or_insert_with(Vec::new);
            if data.len() + payload.len() > max {
                return Ok(Some(End::LimitExceeded));
            }
            data.extend_from_slice(&payload[7..]);
        }
        self.forward(payload).await?;
        Ok(None)
    }

    /// `COM_STMT_CLOSE`: forgotten and passed on; no answer.
    pub(crate) async fn stmt_close(&mut self, payload: &[u8]) -> Result<Option<End>, MysqlError> {
        if let Some(id) = payload
            .get(1..5)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        {
            self.prepared.by_id.remove(&id);
        }
        self.forward(payload).await?;
        Ok(None)
    }

    /// `COM_STMT_RESET`: long data dropped, here and on the server.
    pub(crate) async fn stmt_reset(
        &mut self,
        seq: u8,
        payload: &[u8],
    ) -> Result<Option<End>, MysqlError> {
        if let Some(p) = payload
            .get(1..5)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .and_then(|id| self.prepared.by_id.get_mut(&id))
        {
            p.long_data = vec![None; p.params];
        }
        self.pass_through(seq, payload).await
    }
}
