//! A statement through the gate: read, decided (approvals taken, filed or
//! waited for), made durable, forwarded, its answer relayed and masked,
//! recorded. The same for a query's text and a prepared statement's
//! execution (whose parameters are part of what an approval covers).

use crate::codec::result::Err as ErrPacket;
use crate::codec::status;
use crate::gate::{Gate, Reading, Resolved};
use crate::results::{Answered, Relay, Rows};
use crate::session::{End, MysqlSession};
use crate::sql::MysqlStatement;
use crate::{refusals, MysqlError};
use gatehouse_core::{statement_fingerprint, ActionOutcome, Decided, DecisionRecord};
use gatehouse_session::gate::{self as core_gate, ApprovalAsk, Refusal, Verdict};
use gatehouse_session::recording::mask_for_record;
use gatehouse_session::{Action, Committed, Finished};
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

/// A statement read: what it is, the database its unqualified tables are
/// in, and whether an `EXECUTE` named it.
pub(crate) struct Read {
    pub(crate) st: Arc<MysqlStatement>,
    pub(crate) database: String,
    pub(crate) resolved: Resolved,
}

/// How a decided statement went.
pub(crate) struct Ran {
    /// `Some` ends the session.
    pub(crate) end: Option<End>,
    /// It reached the server.
    pub(crate) forwarded: bool,
    /// The server answered it with an error.
    pub(crate) failed: bool,
}

impl Ran {
    fn ended(end: End) -> Self {
        Self {
            end: Some(end),
            forwarded: false,
            failed: false,
        }
    }

    fn refused() -> Self {
        Self {
            end: None,
            forwarded: false,
            failed: false,
        }
    }
}

/// A statement ready to decide and run.
pub(crate) struct Run<'a> {
    pub(crate) st: Arc<MysqlStatement>,
    /// A query's own statement, or what an `EXECUTE` named.
    pub(crate) resolved: Resolved,
    /// What an approval covers (with the database): the statement itself,
    /// for an `EXECUTE` the one prepared.
    pub(crate) approved_text: String,
    /// The database its unqualified tables are in (for a prepared
    /// statement, the one current when it was prepared).
    pub(crate) database: String,
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
    ) -> Result<Result<Read, Option<End>>, MysqlError> {
        let (reason, err) = match self.gate.read(text) {
            Reading::Statement(st, database, resolved) => {
                let read = Read {
                    st,
                    database,
                    resolved,
                };
                return self.readable(seq, text, flavour, read).await;
            }
            Reading::Unreadable(reason) => {
                let err = refusals::unanalysable(&reason);
                (reason, err)
            }
            Reading::Denied(reason) => {
                let err = refusals::denied(&reason);
                (reason, err)
            }
        };
        let recorded = self.recorded(text, None);
        let end = self
            .refuse_unread(seq, recorded, &reason, err, flavour)
            .await?;
        Ok(Err(end))
    }

    /// A statement that was read: refused when it is a prepared KILL or a
    /// prepared read of diagnostics (checked on queries only).
    async fn readable(
        &mut self,
        seq: u8,
        text: &str,
        flavour: &'static str,
        read: Read,
    ) -> Result<Result<Read, Option<End>>, MysqlError> {
        let reason = if flavour == "simple" {
            None
        } else if Gate::is_kill(&read.st) {
            Some("KILL cannot be prepared through the gateway; send it as a query")
        } else if self.gate.reads_diagnostics(text) {
            Some(
                "SHOW WARNINGS, SHOW ERRORS and GET DIAGNOSTICS cannot be prepared through the \
                 gateway; send them as queries",
            )
        } else {
            None
        };
        if let Some(reason) = reason {
            let recorded = self.recorded(text, Some(&read.st));
            let err = refusals::denied(reason);
            let end = self
                .refuse_unread(seq, recorded, reason, err, flavour)
                .await?;
            return Ok(Err(end));
        }
        Ok(Ok(read))
    }

    /// A statement (`text`) that `payload` carries: read, then [`Self::decide_and_run`].
    pub(crate) async fn statement(
        &mut self,
        seq: u8,
        payload: &[u8],
        text: &str,
        shape: Shape,
    ) -> Result<Option<End>, MysqlError> {
        let read = match self.read(seq, text, "simple").await? {
            Ok(read) => read,
            Err(end) => return Ok(end),
        };
        if Gate::is_kill(&read.st) {
            let recorded = self.recorded(text, Some(&read.st));
            let what = crate::sql::lexer::canonical(text, &self.gate.dialect)
                .ok()
                .and_then(|c| crate::kill::parse(&c));
            return self.kill(seq, recorded, what).await;
        }
        // `EXECUTE s` runs what was prepared under `s`: that is what it is
        // recorded as, and what an approval of it covers (with the database
        // it runs in), so a statement prepared anew under the name is not.
        let shown;
        let (text, approved_text) = match read.resolved {
            Resolved::Prepared => {
                shown = format!("{text} -- {}", read.st.analysis.text);
                (shown.as_str(), read.st.analysis.text.clone())
            }
            Resolved::Itself => (text, text.to_string()),
        };
        let run = Run {
            st: read.st,
            database: read.database,
            resolved: read.resolved,
            text,
            approved_text,
            params: Vec::new(),
            bound: Vec::new(),
            flavour: "simple",
            shape,
        };
        Ok(self.decide_and_run(seq, payload, run).await?.end)
    }

    /// Tells the caller its command's event could not be made durable, and
    /// ends the session.
    async fn evidence_failed(&mut self, seq: u8) -> Result<Ran, MysqlError> {
        let refusal = Refusal::EvidenceUnavailable;
        self.reply(seq, &refusals::refused(&refusal)).await?;
        Ok(Ran::ended(End::EvidenceLogFailed))
    }

    /// Decides `run`, and forwards `payload` (the command that carries it)
    /// when it may go ahead; records it either way.
    pub(crate) async fn decide_and_run(
        &mut self,
        seq: u8,
        payload: &[u8],
        run: Run<'_>,
    ) -> Result<Ran, MysqlError> {
        let st = run.st.clone();
        let recorded = self.recorded(run.text, Some(&st));
        let action = Action::begin(&self.session, run.flavour, recorded, run.params);
        let bound: Vec<Option<&[u8]>> = run.bound.iter().map(|p| p.as_deref()).collect();
        // Bound to the database it runs in as well as its text.
        let fingerprint = statement_fingerprint(
            &self.session.identity().subject,
            self.session.connection(),
            "mysql",
            &format!("{}\n{}", run.database, run.approved_text),
            &bound,
        );
        let record_masking = self.gw.settings.record_masking.clone();
        let mask = move |s: &str| mask_for_record(&record_masking, s);
        let ask = ApprovalAsk {
            seq: action.seq(),
            text: action.text(),
            params: action.params(),
            fingerprint: &fingerprint,
            mask: &mask,
        };
        let gate = &self.gate;
        let flavour = run.flavour;
        let database = run.database.as_str();
        let decide_as = |approved: bool| gate.decision(&st, database, flavour, approved);
        let mode = self.gw.settings.policy.mode();
        let verdict = match core_gate::decide(&self.session, mode, &decide_as, &ask).await {
            Verdict::Held(held) => held.wait(&self.session, &decide_as).await,
            v => v,
        };
        match verdict {
            Verdict::Forward { record, approval } => {
                // A read runs while its event is written; its answer waits for it.
                let reads_only = st.analysis.only_reads();
                let committed = action
                    .write_ahead_overlapping(&self.session, &record, approval, reads_only)
                    .await;
                let pending = match committed {
                    Ok(Committed::Durable) => None,
                    Ok(Committed::Reads(pending)) => Some(pending),
                    Err(_) => return self.evidence_failed(seq).await,
                };
                self.forward(payload).await?;
                if let Some(pending) = pending {
                    if pending.durable().await.is_err() {
                        // It ran, and changed nothing; nothing of its answer is sent.
                        action
                            .finish(
                                &self.session,
                                ActionOutcome::Incomplete,
                                record,
                                Finished::default(),
                            )
                            .await;
                        return self.evidence_failed(seq).await;
                    }
                }
                let guarded = self.gate.touches_ruled(&st, &run.database);
                // Warnings stay guarded until a statement reading a table
                // (which clears them on the server) runs.
                if guarded || !st.analysis.actions.iter().all(|a| a.table.is_none()) {
                    self.gate.warnings_guarded = guarded;
                }
                let mut relay = Relay::new(
                    &mut self.caller.wire,
                    &mut self.backend,
                    &mut self.out,
                    seq,
                    self.mask.as_ref(),
                )
                .with_max_row(self.gw.settings.max_masked_row)
                .withholding_errors(guarded);
                let relayed = match run.shape {
                    Shape::Results(rows) => relay.query(rows).await,
                    Shape::Single => relay.single().await,
                    Shape::Fields => relay.field_list().await,
                };
                let sent = relay.sent();
                self.session.counters().written(sent as usize);
                let answered = match relayed {
                    Ok(a) => a,
                    Err(e) => {
                        // It ran (or may have): recorded as cut short.
                        action
                            .finish(
                                &self.session,
                                ActionOutcome::Incomplete,
                                record,
                                Finished::default(),
                            )
                            .await;
                        return Err(e);
                    }
                };
                let failed = answered.error.is_some();
                if !failed {
                    self.gate.ran(&st, run.resolved);
                }
                let status = answered.status;
                let masking = answered.masking.clone();
                let outcome = outcome(answered, &self.gw.settings.record_masking);
                action
                    .finish(&self.session, outcome, record, Finished::masking(masking))
                    .await;
                let end = self.after(&st, status).await?;
                Ok(Ran {
                    end,
                    forwarded: true,
                    failed,
                })
            }
            Verdict::Refuse { record, refusal } => {
                let err = refusals::refused(&refusal);
                let _ = action.write_ahead(&self.session, &record, None).await;
                self.reply(seq, &err).await?;
                let outcome = ActionOutcome::Error {
                    code: err.sqlstate.clone(),
                    message: err.message.clone(),
                };
                action
                    .finish(&self.session, outcome, record, Finished::default())
                    .await;
                Ok(Ran::refused())
            }
            // `wait` never holds again.
            Verdict::Held(_) => Ok(Ran::ended(End::ProtocolError)),
        }
    }

    /// What must be read back from the server once `st` ran (or failed):
    /// `Some` ends the session.
    async fn after(
        &mut self,
        st: &MysqlStatement,
        status: Option<u16>,
    ) -> Result<Option<End>, MysqlError> {
        let a = &st.analysis;
        // Code the gateway cannot see into may have changed sql_mode or the
        // character set; a failed SET may have changed part of it; and the
        // server says in every OK and EOF whether backslashes escape.
        let opaque = a.flags.opaque_code
            || matches!(a.kind, ActionKind::Procedural | ActionKind::Function)
            || !a.opaque_functions.is_empty();
        let escapes_differ = status.is_some_and(|s| {
            (s & status::NO_BACKSLASH_ESCAPES != 0) != self.gate.dialect.no_backslash_escapes
        });
        let charset = a.settings.iter().any(|c| {
            c.name
                .as_deref()
                .is_some_and(|n| n.starts_with("character_set") || n.starts_with("collation"))
        });
        if Gate::touches_sql_mode(st) || opaque || escapes_differ || charset {
            return self.refresh_session().await;
        }
        Ok(None)
    }

    /// The text records keep: redacted when it holds a password, masked otherwise.
    pub(crate) fn recorded(&self, text: &str, st: Option<&MysqlStatement>) -> String {
        match st {
            Some(st) if st.analysis.secret => st.analysis.text.clone(),
            // Unread: it may set a password the analysis did not find.
            None if may_hold_password(text) => {
                mask_for_record(&self.gw.settings.record_masking, &redact_quoted(text))
            }
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
        let action = Action::begin(&self.session, flavour, recorded, Vec::new());
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
        action
            .finish(&self.session, outcome, record, Finished::default())
            .await;
        Ok(None)
    }
}

/// A relayed answer as records keep it (an error's text masked as
/// statement texts are).
fn outcome(a: Answered, masking: &gatehouse_mask::MaskingEngine) -> ActionOutcome {
    match a.error {
        Some((code, message)) => ActionOutcome::Error {
            code,
            message: mask_for_record(masking, &message),
        },
        None => ActionOutcome::Ok {
            summary: a.tags.join("; "),
            count: Some(a.rows),
        },
    }
}

/// Whether an unread text may set a password (`IDENTIFIED BY`, `PASSWORD`).
fn may_hold_password(text: &str) -> bool {
    let upper = text.to_ascii_uppercase();
    upper.contains("IDENTIFIED") || upper.contains("PASSWORD")
}

/// `text` with everything between quotes replaced by `…`.
fn redact_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut quote: Option<char> = None;
    for c in text.chars() {
        match quote {
            Some(q) if c == q => {
                out.push('…');
                out.push(c);
                quote = None;
            }
            Some(_) => {}
            None => {
                out.push(c);
                if c == '\'' || c == '"' {
                    quote = Some(c);
                }
            }
        }
    }
    if quote.is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unread_texts_that_may_set_a_password_lose_their_quoted_parts() {
        let t = "CREATE USER x IDENTIFIED BY 'hunter2' /* odd";
        assert!(may_hold_password(t));
        assert_eq!(redact_quoted(t), "CREATE USER x IDENTIFIED BY '…' /* odd");
        assert_eq!(redact_quoted("SET PASSWORD = \"abc"), "SET PASSWORD = \"…");
        assert!(!may_hold_password("SELECT 1"));
    }
}
