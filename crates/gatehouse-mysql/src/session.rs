//! One caller's session after login: a command at a time (the protocol
//! has no pipelining), each decided before any of it reaches the server,
//! relayed, and recorded. One function per command.

use crate::action::Action;
use crate::backend::Backend;
use crate::codec::command::Command;
use crate::codec::result::Err as ErrPacket;
use crate::codec::{write_message, FrameError};
use crate::gate::{Gate, Reading};
use crate::handshake::Caller;
use crate::listener::{stopped, Gw};
use crate::results::{Answered, Relay, ResultMask};
use crate::sql::MysqlStatement;
use crate::{refusals, MysqlError, MysqlTarget};
use bytes::Bytes;
use gatehouse_core::{
    statement_fingerprint, ActionOutcome, Decided, DecisionRecord, Identity, SessionEndReason,
};
use gatehouse_session::gate::{self as core_gate, ApprovalAsk, Refusal, Verdict};
use gatehouse_session::recording::mask_for_record;
use gatehouse_session::Session;
use gatehouse_sql::ActionKind;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

/// A logged-in caller's session.
pub(crate) struct MysqlSession {
    gw: Arc<Gw>,
    caller: Caller,
    backend: Backend,
    session: Session,
    gate: Gate,
    mask: Option<ResultMask>,
}

/// Why the command loop stopped.
type End = SessionEndReason;

/// What a decided command's answer looks like.
#[derive(Clone, Copy)]
enum Shape {
    /// Results: OKs and result sets (`COM_QUERY`).
    Results,
    /// One OK or ERR (`COM_INIT_DB`).
    Single,
    /// Column definitions up to an EOF (`COM_FIELD_LIST`).
    Fields,
}

impl MysqlSession {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        gw: Arc<Gw>,
        caller: Caller,
        backend: Backend,
        session: Session,
        identity: Identity,
        target: Arc<MysqlTarget>,
        peer: SocketAddr,
        _connection_id: u32,
    ) -> Self {
        let exempt = target
            .exempt_groups
            .iter()
            .any(|g| identity.groups.iter().any(|x| x == g));
        let masking = target.masking.clone().filter(|_| !exempt);
        let mut caller = caller;
        caller.reader.set_max(gw.settings.max_message);
        let gate = Gate::new(
            gw.settings.policy.clone(),
            identity,
            target.name.clone(),
            peer.ip(),
            backend.dialect,
            target.database.clone(),
            masking.clone(),
        );
        Self {
            gw,
            caller,
            backend,
            session,
            gate,
            mask: masking.map(|engine| ResultMask { engine }),
        }
    }

    /// Runs commands until the caller quits, a side fails or the gateway stops.
    pub(crate) async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let reason = loop {
            let next = tokio::select! {
                m = self.caller.reader.message(&mut self.caller.wire) => m,
                () = stopped(&mut stop) => break End::GatewayShutdown,
            };
            let (seq, payload) = match next {
                Ok(m) => m,
                Err(FrameError::Closed) => break End::ClientDisconnected,
                Err(FrameError::TooLong(limit)) => {
                    let _ = self.reply(0, &refusals::too_large(limit)).await;
                    break End::LimitExceeded;
                }
                Err(FrameError::Io(_)) => break End::NetworkError,
            };
            self.session.counters().read(payload.len() + 4);
            match self.command(seq, payload).await {
                Ok(None) => {}
                Ok(Some(end)) => break end,
                Err(e) => {
                    tracing::debug!(error = %e, "mysql session ended");
                    break End::NetworkError;
                }
            }
        };
        let _ = self.caller.wire.shutdown().await;
        let _ = self.backend.wire.shutdown().await;
        self.session.close(reason, None).await;
    }

    /// One command; `Some` ends the session.
    async fn command(&mut self, seq: u8, payload: Bytes) -> Result<Option<End>, MysqlError> {
        let Some(&byte) = payload.first() else {
            return Ok(Some(End::ProtocolError));
        };
        let cmd = Command::of(byte);
        match cmd {
            Command::Quit => Ok(Some(End::ClientTerminated)),
            Command::Query => self.query(seq, &payload).await,
            Command::InitDb => self.init_db(seq, &payload).await,
            Command::FieldList => self.field_list(seq, &payload).await,
            Command::Ping | Command::Statistics => self.pass_through(seq, &payload).await,
            Command::ResetConnection => self.reset(seq, &payload).await,
            Command::SetOption => self.set_option(seq, &payload).await,
            Command::ProcessKill => {
                self.refuse_command(seq, cmd, "only KILL QUERY of your own session is allowed, and the gateway does not pass it yet")
                    .await
            }
            Command::StmtPrepare
            | Command::StmtExecute
            | Command::StmtSendLongData
            | Command::StmtClose
            | Command::StmtReset
            | Command::StmtFetch => {
                self.refuse_command(
                    seq,
                    cmd,
                    "server-side prepared statements do not pass the gateway yet; use your \
                     driver's client-side parameters (PyMySQL and mysqlclient always do; \
                     mysql2's query(), not execute())",
                )
                .await
            }
            Command::ChangeUser => {
                self.refuse_command(seq, cmd, "a session keeps the identity it logged in with; open a new connection").await
            }
            Command::BinlogDump | Command::RegisterSlave => {
                self.refuse_command(seq, cmd, "replication does not pass the gateway").await
            }
            Command::Other(_) => {
                self.refuse_command(seq, cmd, "the gateway does not know this command").await
            }
        }
    }

    /// Sends the caller an error in answer to the command numbered `seq`.
    async fn reply(&mut self, seq: u8, e: &ErrPacket) -> Result<(), MysqlError> {
        let payload = e.encode();
        write_message(&mut self.caller.wire, seq.wrapping_add(1), &payload).await?;
        self.session.counters().written(payload.len() + 4);
        Ok(())
    }

    async fn refuse_command(
        &mut self,
        seq: u8,
        cmd: Command,
        why: &str,
    ) -> Result<Option<End>, MysqlError> {
        self.reply(seq, &refusals::command(&cmd.name(), why)).await?;
        Ok(None)
    }

    /// Sends `payload` to the server as the command it is.
    async fn forward(&mut self, payload: &[u8]) -> Result<(), MysqlError> {
        write_message(&mut self.backend.wire, 0, payload).await?;
        Ok(())
    }

    /// Commands that neither read nor change data (`COM_PING`, `COM_STATISTICS`).
    async fn pass_through(&mut self, seq: u8, payload: &[u8]) -> Result<Option<End>, MysqlError> {
        self.forward(payload).await?;
        let mut relay = Relay::new(&mut self.caller.wire, &mut self.backend, seq, None);
        relay.single().await?;
        self.session.counters().written(relay.sent() as usize);
        Ok(None)
    }

    /// `COM_SET_OPTION`: multi-statements may not be turned on.
    async fn set_option(&mut self, seq: u8, payload: &[u8]) -> Result<Option<End>, MysqlError> {
        const MULTI_STATEMENTS_ON: u16 = 0;
        let option = payload.get(1..3).map(|b| u16::from_le_bytes([b[0], b[1]]));
        if option != Some(1) {
            let why = match option {
                Some(MULTI_STATEMENTS_ON) => {
                    "multi-statements stay off: the gateway decides one statement at a time"
                }
                _ => "unknown option",
            };
            return self.refuse_command(seq, Command::SetOption, why).await;
        }
        self.pass_through(seq, payload).await
    }

    /// `COM_RESET_CONNECTION`: the server forgets the session's state, and
    /// so does the gate.
    async fn reset(&mut self, seq: u8, payload: &[u8]) -> Result<Option<End>, MysqlError> {
        self.forward(payload).await?;
        let mut relay = Relay::new(&mut self.caller.wire, &mut self.backend, seq, None);
        relay.single().await?;
        self.session.counters().written(relay.sent() as usize);
        self.gate.reset();
        self.refresh_sql_mode().await?;
        Ok(None)
    }

    /// Reads `sql_mode` back from the server (after something the gateway
    /// could not see into may have changed it).
    async fn refresh_sql_mode(&mut self) -> Result<(), MysqlError> {
        self.backend.read_sql_mode().await?;
        let d = self.backend.dialect;
        self.gate.dialect.ansi_quotes = d.ansi_quotes;
        self.gate.dialect.no_backslash_escapes = d.no_backslash_escapes;
        Ok(())
    }

    /// `COM_QUERY`.
    async fn query(&mut self, seq: u8, payload: &[u8]) -> Result<Option<End>, MysqlError> {
        let text = match std::str::from_utf8(&payload[1..]) {
            Ok(t) => t.to_string(),
            Err(_) => {
                let reason = "the statement is not valid UTF-8 (send binary data as hex literals \
                              or with a character set introducer)";
                let recorded = String::from_utf8_lossy(&payload[1..]).into_owned();
                let recorded = self.recorded(&recorded, None);
                let err = refusals::unanalysable(reason);
                return self.refuse_unread(seq, recorded, reason, err).await;
            }
        };
        self.statement(seq, payload, &text, Shape::Results).await
    }

    /// `COM_INIT_DB`: decided as `USE db`.
    async fn init_db(&mut self, seq: u8, payload: &[u8]) -> Result<Option<End>, MysqlError> {
        let db = String::from_utf8_lossy(&payload[1..]).replace('`', "``");
        self.statement(seq, payload, &format!("USE `{db}`"), Shape::Single)
            .await
    }

    /// `COM_FIELD_LIST`: decided as `SHOW COLUMNS FROM table`.
    async fn field_list(&mut self, seq: u8, payload: &[u8]) -> Result<Option<End>, MysqlError> {
        let table = payload[1..].split(|&b| b == 0).next().unwrap_or_default();
        let table = String::from_utf8_lossy(table).replace('`', "``");
        self.statement(
            seq,
            payload,
            &format!("SHOW COLUMNS FROM `{table}`"),
            Shape::Fields,
        )
        .await
    }

    /// A statement (`text`) that `payload` carries: read, decided, forwarded
    /// and relayed (its answer shaped as `shape`), recorded.
    async fn statement(
        &mut self,
        seq: u8,
        payload: &[u8],
        text: &str,
        shape: Shape,
    ) -> Result<Option<End>, MysqlError> {
        let st = match self.gate.read(text) {
            Reading::Statement(st) => st,
            Reading::Unreadable(reason) => {
                let recorded = self.recorded(text, None);
                let err = refusals::unanalysable(&reason);
                return self.refuse_unread(seq, recorded, &reason, err).await;
            }
            Reading::Denied(reason) => {
                let recorded = self.recorded(text, None);
                let err = refusals::denied(&reason);
                return self.refuse_unread(seq, recorded, &reason, err).await;
            }
        };
        if Gate::is_kill(&st) {
            let recorded = self.recorded(text, Some(&st));
            let reason = "KILL does not pass the gateway yet (a caller will be able to end only \
                          its own queries)";
            let err = refusals::denied(reason);
            return self.refuse_unread(seq, recorded, reason, err).await;
        }
        let recorded = self.recorded(text, Some(&st));
        let action = Action::begin(&self.session, recorded, "simple");
        let fingerprint = statement_fingerprint(
            &self.session.identity().subject,
            self.session.connection(),
            "mysql",
            text,
            &[],
        );
        let record_masking = self.gw.settings.record_masking.clone();
        let mask = move |s: &str| mask_for_record(&record_masking, s);
        let ask = ApprovalAsk {
            seq: action.seq,
            text: &action.text,
            params: &[],
            fingerprint: &fingerprint,
            mask: &mask,
        };
        let gate = &self.gate;
        let decide_as = |approved: bool| gate.decision(&st, "simple", approved);
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
                );
                let answered = match shape {
                    Shape::Results => relay.query().await?,
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
    fn recorded(&self, text: &str, st: Option<&MysqlStatement>) -> String {
        match st {
            Some(st) if st.analysis.secret => st.analysis.text.clone(),
            _ => mask_for_record(&self.gw.settings.record_masking, text),
        }
    }

    /// Refuses a statement before the policy saw it (recorded as denied,
    /// in audit mode too: what cannot be read cannot be let through).
    async fn refuse_unread(
        &mut self,
        seq: u8,
        recorded: String,
        reason: &str,
        err: ErrPacket,
    ) -> Result<Option<End>, MysqlError> {
        let action = Action::begin(&self.session, recorded, "simple");
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
