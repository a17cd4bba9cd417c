//! One caller's session after login: a command at a time (the protocol
//! has no pipelining), each decided before any of it reaches the server,
//! relayed, and recorded. One function per command.

use crate::backend::Backend;
use crate::codec::command::Command;
use crate::codec::result::Err as ErrPacket;
use crate::codec::{put_message, write_message, FrameError};
use crate::gate::Gate;
use crate::handshake::Caller;
use crate::listener::Gw;
use crate::results::{Relay, ResultMask, Rows};
use crate::statement::{Run, Shape};
use crate::{refusals, MysqlError, MysqlTarget};
use bytes::{Bytes, BytesMut};
use gatehouse_core::{Identity, SessionEndReason};
use gatehouse_session::stopped;
use gatehouse_session::Session;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

/// A logged-in caller's session.
pub(crate) struct MysqlSession {
    pub(crate) gw: Arc<Gw>,
    pub(crate) caller: Caller,
    pub(crate) backend: Backend,
    pub(crate) session: Session,
    pub(crate) gate: Gate,
    pub(crate) mask: Option<ResultMask>,
    /// Prepared statements, by the server's id.
    pub(crate) prepared: crate::prepared::Statements,
    /// Its place among the sessions `KILL` can reach.
    _registered: crate::kill::Registered,
    /// Bytes on their way to either side, kept between commands.
    pub(crate) out: BytesMut,
}

/// Why the command loop stopped.
pub(crate) type End = SessionEndReason;

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
        connection_id: u32,
    ) -> Self {
        let registered = gw.kills.register(
            connection_id,
            &identity.subject,
            &target.name,
            backend.connection_id,
        );
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
            prepared: Default::default(),
            _registered: registered,
            out: BytesMut::with_capacity(16 * 1024),
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
                Err(MysqlError::RowTooLarge(limit)) => {
                    tracing::warn!(
                        limit,
                        "mysql: a result row too large to mask; ending the session"
                    );
                    break End::LimitExceeded;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "mysql session ended");
                    break End::NetworkError;
                }
            }
        };
        let _ = self.caller.wire.shutdown().await;
        // A quit, so the server does not count the connection as aborted.
        let _ = write_message(&mut self.backend.wire, 0, &[0x01]).await;
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
                let id = payload
                    .get(1..5)
                    .map(|b| u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])));
                let recorded = format!("COM_PROCESS_KILL {}", id.unwrap_or_default());
                self.kill(
                    seq,
                    recorded,
                    id.map(|id| (crate::kill::Kill::Connection, id)),
                )
                .await
            }
            Command::StmtPrepare => self.stmt_prepare(seq, &payload).await,
            Command::StmtExecute => self.stmt_execute(seq, &payload).await,
            Command::StmtSendLongData => self.stmt_long_data(&payload).await,
            Command::StmtClose => self.stmt_close(&payload).await,
            Command::StmtReset => self.stmt_reset(seq, &payload).await,
            Command::StmtFetch => {
                self.refuse_command(
                    seq,
                    cmd,
                    "server-side cursors do not pass the gateway; fetch the whole result",
                )
                .await
            }
            Command::ChangeUser => {
                self.refuse_command(
                    seq,
                    cmd,
                    "a session keeps the identity it logged in with; open a new connection",
                )
                .await
            }
            Command::BinlogDump | Command::RegisterSlave => {
                self.refuse_command(seq, cmd, "replication does not pass the gateway")
                    .await
            }
            Command::Other(_) => {
                self.refuse_command(seq, cmd, "the gateway does not know this command")
                    .await
            }
        }
    }

    /// Sends the caller an error in answer to the command numbered `seq`.
    pub(crate) async fn reply(&mut self, seq: u8, e: &ErrPacket) -> Result<(), MysqlError> {
        let payload = e.encode();
        write_message(&mut self.caller.wire, seq.wrapping_add(1), &payload).await?;
        self.session.counters().written(payload.len() + 4);
        Ok(())
    }

    pub(crate) async fn refuse_command(
        &mut self,
        seq: u8,
        cmd: Command,
        why: &str,
    ) -> Result<Option<End>, MysqlError> {
        let err = refusals::command(&cmd.name(), why);
        let recorded = cmd.name();
        self.refuse_unread(seq, recorded, why, err, "simple").await
    }

    /// Sends `payload` to the server as the command it is.
    pub(crate) async fn forward(&mut self, payload: &[u8]) -> Result<(), MysqlError> {
        self.out.clear();
        put_message(&mut self.out, 0, payload);
        self.backend.wire.write_all(&self.out).await?;
        self.backend.wire.flush().await?;
        Ok(())
    }

    /// Commands that neither read nor change data (`COM_PING`, `COM_STATISTICS`).
    pub(crate) async fn pass_through(
        &mut self,
        seq: u8,
        payload: &[u8],
    ) -> Result<Option<End>, MysqlError> {
        self.forward(payload).await?;
        let mut relay = Relay::new(
            &mut self.caller.wire,
            &mut self.backend,
            &mut self.out,
            seq,
            None,
        );
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
    /// It rolls back the open transaction (and drops temporary tables,
    /// locks and variables): decided as `ROLLBACK`, recorded as itself.
    async fn reset(&mut self, seq: u8, payload: &[u8]) -> Result<Option<End>, MysqlError> {
        let read = match self.read(seq, "ROLLBACK", "simple").await? {
            Ok(read) => read,
            Err(end) => return Ok(end),
        };
        let run = Run {
            st: read.st,
            database: read.database,
            resolved: read.resolved,
            text: "COM_RESET_CONNECTION",
            approved_text: "COM_RESET_CONNECTION".into(),
            params: Vec::new(),
            bound: Vec::new(),
            flavour: "simple",
            shape: Shape::Single,
        };
        let ran = self.decide_and_run(seq, payload, run).await?;
        // The server forgets the session's state only when it reset it.
        if !ran.forwarded || ran.failed || ran.end.is_some() {
            return Ok(ran.end);
        }
        self.gate.reset();
        self.prepared.clear();
        self.refresh_session().await
    }

    /// Reads `sql_mode` and the character sets back from the server
    /// (after something that changed or may have changed them); `Some`
    /// ends the session when the gateway can no longer read statements as
    /// the server does.
    pub(crate) async fn refresh_session(&mut self) -> Result<Option<End>, MysqlError> {
        match self.backend.read_session().await {
            Ok(()) => {
                let d = self.backend.dialect;
                self.gate.dialect.ansi_quotes = d.ansi_quotes;
                self.gate.dialect.no_backslash_escapes = d.no_backslash_escapes;
                Ok(None)
            }
            Err(MysqlError::UnsafeSession(why)) => {
                tracing::warn!(reason = %why, "mysql: the session changed how the server reads statements; ending it");
                Ok(Some(End::PinnedSettingChanged))
            }
            Err(e) => Err(e),
        }
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
                return self
                    .refuse_unread(seq, recorded, reason, err, "simple")
                    .await;
            }
        };
        self.statement(seq, payload, &text, Shape::Results(Rows::Text))
            .await
    }

    /// `COM_INIT_DB`: decided as `USE db`.
    async fn init_db(&mut self, seq: u8, payload: &[u8]) -> Result<Option<End>, MysqlError> {
        let Ok(db) = std::str::from_utf8(&payload[1..]) else {
            let reason = "the database name is not valid UTF-8";
            let recorded = String::from_utf8_lossy(&payload[1..]).into_owned();
            let err = refusals::unanalysable(reason);
            return self
                .refuse_unread(seq, recorded, reason, err, "simple")
                .await;
        };
        let db = db.replace('`', "``");
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
}
