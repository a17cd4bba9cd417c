//! A statement through the gate: read, decided (approvals taken, filed or
//! waited for), made durable, forwarded, its answer relayed and masked,
//! recorded. The same for a query's text and a prepared statement's
//! execution (whose parameters are part of what an approval covers).

use crate::action::Action;
use crate::codec::result::Err as ErrPacket;
use crate::gate::{Gate, Reading};
use crate::results::{Answered, Relay, Rows};
use crate::session::{End, MysqlSession};
use crate::sql::MysqlStatement;
use crate::{refusals, MysqlError};
use gatehouse_core::{statement_fingerprint, ActionOutcome, Decided, DecisionRecord};
use gatehouse_session::gate::{self as core_gate, ApprovalAsk, Refusal, Verdict};
use gatehouse_session::recording::mask_for_record;
use gatehouse_sql::ActionKind;
use std::sync::Arc;

/// What a decided command's answer looks like.
#[derive(Clone, Copy)]
pub(crate) enum Shape {
    /// OKs and result sets (`COM_QUERY`, `COM_STMT_EXECUTE`).
    Results(Rows),
    /// One OK or ERR (`COM_INIT_DB`).
    Single,
    /// Column definitions up to an EOF (`COM_FIELD_LIST`).
    Fields,
}

/// A statement ready to decide and run.
pub(crate) struct Run<'a> {
    pub(crate) st: Arc<MysqlStatement>,
    /// Its text as sent (what an approval is bound to).
    pub(crate) text: &'a str,
    /// Its parameters as records keep them (masked).
    pub(crate) params: Vec<Option<String>>,
    /// Its parameters as sent (what an approval is bound to with the text).
    pub(crate) bound: Vec<Option<Vec<u8>>>,
    /// `simple` (a query) or `extended` (a prepared statement's execution).
    pub(crate) flavour: &'static str,
    pub(crate) shape: Shape,
}

impl MysqlSession {
    /// Reads `text`; a refusal (already answered and recorded) is `Err`.
    pub(crate) async fn read(
        &mut self,
        seq: u8,
        text: &str,
        flavour: &'static str,
    ) -> Result<Result<Arc<MysqlStatement>, Option<End>>, MysqlError> {
        let st = match self.gate.read(text) {
            Reading::Statement(st) => st,
            Reading::Unreadable(reason) => {
                let recorded = self.recorded(text, None);
                let err = refusals::unanalysable(&reason);
                let end = self
                    .refuse_unread(seq, recorded, &reason, err, flavour)
                    .await?;
                return Ok(Err(end));
            }
            Reading::Denied(reason) => {
                let recorded = self.recorded(text, None);
                let err = refusals::denied(&reason);
                let end = self
                    .refuse_unread(seq, recorded, &reason, err, flavour)
                    .await?;
                return Ok(Err(end));
            }
        };
        if Gate::is_kill(&st) && flavour != "simple" {
            let recorded = self.recorded(text, Some(&st));
            let reason = "KILL cannot be prepared through the gateway; send it as a query";
            let err = refusals::denied(reason);
            let end = self
                .refuse_unread(seq, recorded, reason, err, flavour)
                .await?;
            return Ok(Err(end));
        }
        Ok(Ok(st))
    }

    /// A statement (`text`) that `payload` carries: read, then [`Self::decide_and_run`].
    pub(crate) async fn statement(
        &mut self,
        seq: u8,
        payload: &[u8],
        text: &str,
        shape: Shape,
    ) -> Result<Option<End>, MysqlError> {
        let st = match self.read(seq, text, "simple").await? {
            Ok(st) => st,
            Err(end) => return Ok(end),
        };
        if Gate::is_kill(&st) {
            let recorded = self.recorded(text, Some(&st));
            let what = crate::sql::lexer::canonical(text, &self.gate.dialect)
                .ok()
                .and_then(|c| crate::kill::parse(&c));
            return self.kill(seq, recorded, what).await;
        }
        let run = Run {
            st,
            text,
            params: Vec::new(),
            bound: Vec::new(),
            flavour: "simple",
            shape,
        };
        self.decide_and_run(seq, payload, run).await
    }

    /// Decides `run`, and forwards `payload` (the command that carries it)
    /// when it may go ahead; records it either way.
    pub(crate) async fn decide_and_run(
        &mut self,
        seq: u8,
        payload: &[u8],
        run: Run<'_>,
    ) -> Result<Option<End>, MysqlError> {
        let st = run.st.clone();
        let recorded = self.recorded(run.text, Some(&st));
        let action = Action::begin(&self.session, recorded, run.flavour, run.params);
        let bound: Vec<Option<&[u8]>> = run.bound.iter().map(|p| p.as_deref()).collect();
        let fingerprint = statement_fingerprint(
            &self.session.identity().subject,
            self.session.connection(),
            "mysql",
            run.text,
            &bound,
        );
        let record_masking = self.gw.settings.record_masking.clone();
        let mask = move |s: &str| mask_for_record(&record_masking, s);
        let ask = ApprovalAsk {
            seq: action.seq,
            text: &action.text,
            params: &action.params,
            fingerprint: &fingerprint,
            mask: &mask,
        };
        let gate = &self.gate;
        let flavour = run.flavour;
        let decide_as = |approved: bool| gate.decision(&st, flavour, approved);
        let mode = self.gw.settings.policy.mode();
        let verdict = match core_gate::decide(&self.session, mode, &decide_as, &ask).await {
            Verdict::Held(held) => held.wait(&self.session, &decide_as).await,
            v => v,
        };
        match verdict {
            Verdict::Forward { record, approval } => {
                if action
                    .write_ahead(&self.session, &record, approval)
                    .await
                    .is_err()
                {
                    let refusal = Refusal::EvidenceUnavailable;
                    self.reply(seq, &refusals::refused(&refusal)).await?;
                    return Ok(Some(End::EvidenceLogFailed));
                }
                self.forward(payload).await?;
                let mut relay = Relay::new(
                    &mut self.caller.wire,
                    &mut self.backend,
                    seq,
                    self.mask.as_ref(),
                )
                .with_max_row(self.gw.settings.max_masked_row);
                let answered = match run.shape {
                    Shape::Results(rows) => relay.query(rows).await?,
                    Shape::Single => relay.single().await?,
                    Shape::Fields => relay.field_list().await?,
                };
                self.session.counters().written(relay.sent() as usize);
                if answered.error.is_none() {
                    self.ran(&st).await?;
                }
                let masking = answered.masking.clone();
                action
                    .finish(&self.session, outcome(answered), record, masking)
                    .await;
                Ok(None)
            }
            Verdict::Refuse { record, refusal } => {
                let err = refusals::refused(&refusal);
                let _ = action.write_ahead(&self.session, &record, None).await;
                self.reply(seq, &err).await?;
                let outcome = ActionOutcome::Error {
                    code: err.sqlstate.clone(),
                    message: err.message.clone(),
                };
                action.finish(&self.session, outcome, record, None).await;
                Ok(None)
            }
            // `wait` never holds again.
            Verdict::Held(_) => Ok(Some(End::ProtocolError)),
        }
    }

    /// The session state once `st` ran.
    async fn ran(&mut self, st: &MysqlStatement) -> Result<(), MysqlError> {
        self.gate.ran(st);
        let a = &st.analysis;
        // Code the gateway cannot see into may have changed sql_mode.
        let opaque = a.flags.opaque_code
            || matches!(a.kind, ActionKind::Procedural | ActionKind::Function)
            || !a.opaque_functions.is_empty();
        if Gate::needs_sql_mode(st) || opaque {
            self.refresh_sql_mode().await?;
        }
        Ok(())
    }

    /// The text records keep: redacted when it holds a password, masked otherwise.
    pub(crate) fn recorded(&self, text: &str, st: Option<&MysqlStatement>) -> String {
        match st {
            Some(st) if st.analysis.secret => st.analysis.text.clone(),
            _ => mask_for_record(&self.gw.settings.record_masking, text),
        }
    }

    /// Refuses a statement before the policy saw it (recorded as denied,
    /// in audit mode too: what cannot be read cannot be let through).
    pub(crate) async fn refuse_unread(
        &mut self,
        seq: u8,
        recorded: String,
        reason: &str,
        err: ErrPacket,
        flavour: &'static str,
    ) -> Result<Option<End>, MysqlError> {
        let action = Action::begin(&self.session, recorded, flavour, Vec::new());
        let record = DecisionRecord {
            decision: Decided::Deny,
            policies: Vec::new(),
            mode: self.gw.settings.policy.mode().recorded(),
            reason: Some(reason.to_string()),
        };
        let _ = action.write_ahead(&self.session, &record, None).await;
        self.reply(seq, &err).await?;
        let outcome = ActionOutcome::Error {
            code: err.sqlstate.clone(),
            message: err.message.clone(),
        };
        action.finish(&self.session, outcome, record, None).await;
        Ok(None)
    }
}

/// A relayed answer as records keep it.
fn outcome(a: Answered) -> ActionOutcome {
    match a.error {
        Some((code, message)) => ActionOutcome::Error { code, message },
        None => ActionOutcome::Ok {
            summary: a.tags.join("; "),
            count: Some(a.rows),
        },
    }
}
