//! The caller's login, on the core's login sequence: the gateway's greeting
//! (offering TLS), TLS, then the token as the password through
//! `mysql_clear_password` (asked for with an AuthSwitchRequest once the
//! transport passed, so a client never sends it in the clear), the
//! connection named by the database (or, without one, the user name), the
//! backend login, the session opened, and the caller told OK.

use crate::backend::{self, UTF8MB4};
use crate::codec::handshake::{auth_switch, ssl_request, Greeting, HandshakeResponse};
use crate::codec::result::{self, Err as ErrPacket};
use crate::codec::{caps, read_exact_packet, write_message, FrameError, PacketReader};
use crate::io::Wire;
use crate::listener::Gw;
use crate::session::MysqlSession;
use crate::{refusals, MysqlError};
use gatehouse_core::{Protocol, SessionEndReason};
use gatehouse_session::{Credential, LoginAttempt, SessionDetails};
use rand::Rng;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::watch;

/// The server version callers see: the protocol is MySQL's, whatever the
/// backend (whose own version decides how statements are lexed).
const SERVER_VERSION: &str = "8.0.40-gatehouse";
/// The plugin that carries the token.
const CLEAR_PASSWORD: &str = "mysql_clear_password";
/// The longest login message a caller may send (user, token, database).
const LOGIN_MESSAGE: usize = 64 * 1024;
/// `SERVER_STATUS_AUTOCOMMIT`.
const AUTOCOMMIT: u16 = 0x0002;

/// A caller mid-login.
pub(crate) struct Caller {
    pub(crate) wire: Wire,
    pub(crate) reader: PacketReader,
    /// The next sequence number to send.
    pub(crate) seq: u8,
}

impl Caller {
    /// Sends an error and closes.
    pub(crate) async fn refuse(&mut self, e: &ErrPacket) {
        let _ = write_message(&mut self.wire, self.seq, &e.encode()).await;
        let _ = self.wire.shutdown().await;
    }
}

/// Runs one caller connection: login, then its session.
pub(crate) async fn serve(
    gw: Arc<Gw>,
    tcp: TcpStream,
    peer: SocketAddr,
    stop: watch::Receiver<bool>,
) {
    let _ = tcp.set_nodelay(true);
    let connection_id = gw.connection_id();
    let login = tokio::time::timeout(gw.settings.login_timeout, greet(&gw, tcp, connection_id));
    let (mut caller, response) = match login.await {
        Ok(Ok(greeted)) => greeted,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "mysql: handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "mysql: no login within the login timeout");
            return;
        }
    };
    let name = match response.database.as_deref().filter(|d| !d.is_empty()) {
        Some(db) => String::from_utf8_lossy(db).into_owned(),
        None => String::from_utf8_lossy(&response.user).into_owned(),
    };
    let target = gw.settings.connections.get(&name).cloned();
    let attempt = LoginAttempt {
        protocol: Protocol::Mysql,
        peer,
        encrypted: caller.wire.encrypted(),
        connection: Some(&name),
        kind: target.as_ref().map(|_| "mysql"),
    };
    let knock = match gw.gatekeeper.knock(attempt).await {
        Ok(k) => k,
        Err(r) => return caller.refuse(&refusals::login(&r)).await,
    };
    let token = match token(&mut caller, &response, gw.settings.login_timeout).await {
        Ok(t) => t,
        Err(e) => {
            tracing::debug!(%peer, error = %e, "mysql: no token");
            return;
        }
    };
    let credential = match token.as_deref() {
        Some(t) if !t.is_empty() => Credential::Token(t),
        _ => Credential::Missing,
    };
    let checked = match gw.gatekeeper.login(&knock, credential).await {
        Ok(c) => c,
        Err(r) => return caller.refuse(&refusals::login(&r)).await,
    };
    let Some(target) = target else {
        // The login sequence refuses unknown connections: not reached.
        return;
    };
    let identity = checked.identity().clone();
    let admitted = match checked.admit().await {
        Ok(a) => a,
        Err(r) => return caller.refuse(&refusals::login(&r)).await,
    };
    let backend = match backend::connect(
        &target,
        response.capabilities,
        backend_collation(response.collation),
        gw.settings.max_message,
    )
    .await
    {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(connection = %target.name, error = %e, "mysql: could not log in to the backend");
            return caller
                .refuse(&refusals::backend_unavailable(&target.name))
                .await;
        }
    };
    tracing::debug!(connection = %target.name, server = %backend.server_version, "mysql: logged in to the backend");
    let session = match admitted
        .open(SessionDetails {
            client_user: String::from_utf8_lossy(&response.user).into_owned(),
            application_name: None,
        })
        .await
    {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "could not open a mysql session");
            return caller.refuse(&refusals::session_not_recorded()).await;
        }
    };
    let ok = result::Ok {
        status: backend.status | AUTOCOMMIT,
        ..result::Ok::default()
    };
    if write_message(&mut caller.wire, caller.seq, &ok.encode())
        .await
        .is_err()
    {
        session
            .close(SessionEndReason::ClientDisconnected, None)
            .await;
        return;
    }
    let s = MysqlSession::new(
        gw,
        caller,
        backend,
        session,
        identity,
        target,
        peer,
        connection_id,
    );
    s.run(stop).await;
}

/// The greeting, TLS when the caller asks for it, and its answer.
async fn greet(
    gw: &Gw,
    tcp: TcpStream,
    connection_id: u32,
) -> Result<(Caller, HandshakeResponse), MysqlError> {
    let mut wire = Wire::Plain(tcp);
    let mut scramble = [0u8; 20];
    rand::thread_rng().fill(&mut scramble);
    // Clients read the scramble as a C string in places: no NULs.
    for b in &mut scramble {
        *b = 1 + *b % 127;
    }
    let greeting = Greeting {
        server_version: SERVER_VERSION.into(),
        connection_id,
        scramble: scramble.to_vec(),
        capabilities: caps::OFFERED | caps::SSL,
        collation: UTF8MB4,
        status: AUTOCOMMIT,
        plugin: "mysql_native_password".into(),
    };
    write_message(&mut wire, 0, &greeting.encode()).await?;
    let mut reader = PacketReader::new(LOGIN_MESSAGE);
    // Read exactly: a ClientHello may follow an SSLRequest in the same read.
    let (seq, mut payload) = read_exact_packet(&mut wire, LOGIN_MESSAGE).await?;
    let mut seq = seq.wrapping_add(1);
    if ssl_request(&payload).is_some() {
        let Wire::Plain(tcp) = wire else {
            return Err(MysqlError::Tls("TLS requested twice".into()));
        };
        let tls = tokio_rustls::TlsAcceptor::from(gw.settings.tls.clone())
            .accept(tcp)
            .await
            .map_err(|e| MysqlError::Tls(e.to_string()))?;
        wire = Wire::Accepted(Box::new(tls));
        let (s, p) = reader.message(&mut wire).await?;
        seq = s.wrapping_add(1);
        payload = p;
    }
    let mut caller = Caller { wire, reader, seq };
    match HandshakeResponse::parse(&payload) {
        // The token is asked for with an AuthSwitchRequest, which a client
        // without plugin authentication would not understand.
        Some(r) if r.capabilities & caps::PLUGIN_AUTH == 0 => {
            let e = refusals::unanalysable(
                "this client does not support authentication plugins (MySQL 5.5 and later do), \
                 which the gateway needs to receive the token",
            );
            caller.refuse(&e).await;
            Err(MysqlError::Frame(FrameError::Closed))
        }
        Some(r) => Ok((caller, r)),
        None => {
            let e = refusals::unanalysable("the login message could not be read");
            caller.refuse(&e).await;
            Err(MysqlError::Frame(FrameError::Closed))
        }
    }
}

/// The caller's token: what it sent with `mysql_clear_password`, asked for
/// when its first answer used another plugin.
async fn token(
    caller: &mut Caller,
    response: &HandshakeResponse,
    timeout: std::time::Duration,
) -> Result<Option<String>, MysqlError> {
    let raw = if response.plugin.as_deref() == Some(CLEAR_PASSWORD) {
        response.auth.clone()
    } else {
        let ask = auth_switch(CLEAR_PASSWORD, &[]);
        caller.seq = write_message(&mut caller.wire, caller.seq, &ask).await?;
        let reply = tokio::time::timeout(timeout, caller.reader.message(&mut caller.wire))
            .await
            .map_err(|_| MysqlError::Timeout("sending the token", timeout))??;
        caller.seq = reply.0.wrapping_add(1);
        reply.1.to_vec()
    };
    let raw = raw.strip_suffix(&[0]).unwrap_or(&raw);
    Ok(String::from_utf8(raw.to_vec()).ok())
}

/// The collation the backend session uses: the caller's when it is one of
/// the single-byte or UTF-8 ones the gateway lexes as the server does,
/// else `utf8mb4_general_ci`.
fn backend_collation(caller: u8) -> u8 {
    match caller {
        // latin1, ascii, utf8mb3, utf8mb4 (general and bin), binary.
        8 | 11 | 33 | 45 | 46 | 63 | 83 => caller,
        _ => UTF8MB4,
    }
}
