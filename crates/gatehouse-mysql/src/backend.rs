//! The backend leg: the gateway connects and logs in with its own
//! credentials (the caller's token never reaches the server), over TLS as
//! the connection says, then reads what the session's analysis needs to
//! know about the server (its version and `sql_mode`).

mod auth;

use crate::codec::handshake::{self, Greeting, HandshakeResponse, AUTH_MORE_DATA};
use crate::codec::result::{self, Err as ErrPacket};
use crate::codec::wire::Cursor;
use crate::codec::{caps, write_message, PacketReader};
use crate::io::Wire;
use crate::sql::Dialect;
use crate::{BackendTls, MysqlError, MysqlTarget};
use rustls::pki_types::ServerName;
use std::sync::Arc;
use tokio::net::TcpStream;

/// `utf8mb4_general_ci`, which every MySQL and MariaDB server knows.
pub(crate) const UTF8MB4: u8 = 45;

/// The caller's capabilities the backend login carries over: they change
/// what results look like, not what commands may do.
const FROM_CALLER: u32 = caps::FOUND_ROWS | caps::INTERACTIVE;

/// A logged-in backend connection.
pub(crate) struct Backend {
    pub(crate) wire: Wire,
    pub(crate) reader: PacketReader,
    /// The server's version string.
    pub(crate) server_version: String,
    /// The server's id for this connection (what `KILL` names).
    pub(crate) connection_id: u32,
    /// How the server lexes statements.
    pub(crate) dialect: Dialect,
    /// The server's status flags after login.
    pub(crate) status: u16,
}

/// Connects to `target` and logs in, all within its connect timeout.
pub(crate) async fn connect(
    target: &MysqlTarget,
    caller_caps: u32,
    collation: u8,
    max_message: usize,
) -> Result<Backend, MysqlError> {
    let login = async {
        let mut backend = login(target, caller_caps, collation, max_message).await?;
        backend.read_session().await?;
        Ok::<_, MysqlError>(backend)
    };
    tokio::time::timeout(target.connect_timeout, login)
        .await
        .map_err(|_| {
            MysqlError::Timeout(
                "connecting and logging in to the MySQL server",
                target.connect_timeout,
            )
        })?
}

async fn login(
    target: &MysqlTarget,
    caller_caps: u32,
    collation: u8,
    max_message: usize,
) -> Result<Backend, MysqlError> {
    let addr = format!("{}:{}", target.host, target.port);
    let tcp = TcpStream::connect(&addr)
        .await
        .map_err(|e| MysqlError::Backend(format!("{addr}: cannot connect: {e}")))?;
    tcp.set_nodelay(true)?;
    let mut wire = Wire::Plain(tcp);
    let mut reader = PacketReader::new(max_message);
    let (_, payload) = reader.message(&mut wire).await?;
    if result::is_err(&payload) {
        let e = ErrPacket::parse(&payload).map_or_else(|| "an error".into(), |e| e.message);
        return Err(MysqlError::BackendLogin(e));
    }
    let greeting = Greeting::parse(&payload)
        .ok_or_else(|| MysqlError::Backend(format!("{addr}: not a MySQL 4.1+ greeting")))?;
    let offered = greeting.capabilities;
    let mut capabilities = (caps::OFFERED & !FROM_CALLER) | (caller_caps & FROM_CALLER);
    capabilities &= (offered | caps::LONG_PASSWORD) & !caps::NEVER;
    let tls = match (&target.tls, offered & caps::SSL != 0) {
        (BackendTls::Disable, _) | (BackendTls::Prefer(_), false) => None,
        (BackendTls::Prefer(c) | BackendTls::Require(c) | BackendTls::VerifyFull(c), true) => {
            Some(c.clone())
        }
        (BackendTls::Require(_) | BackendTls::VerifyFull(_), false) => {
            return Err(MysqlError::Tls(format!(
                "{addr} does not offer TLS, and backend_tls requires it"
            )))
        }
    };
    let mut response = HandshakeResponse {
        capabilities: capabilities | if tls.is_some() { caps::SSL } else { 0 },
        max_packet: 1 << 30,
        collation,
        user: target.user.as_bytes().to_vec(),
        auth: Vec::new(),
        database: Some(target.database.as_bytes().to_vec()),
        plugin: Some(greeting.plugin.clone()),
    };
    let mut seq: u8 = 1;
    if let Some(config) = tls {
        seq = write_message(&mut wire, seq, &response.ssl_request()).await?;
        wire = upgrade(wire, config, &target.host).await?;
    }
    // The password itself goes only to a server whose certificate was
    // verified: over unverified TLS anyone in between could be the server.
    let verified = matches!(target.tls, BackendTls::VerifyFull(_)) && wire.encrypted();
    let password = target.password.expose();
    response.auth = answer(&greeting.plugin, password, &greeting.scramble, verified)?;
    write_message(&mut wire, seq, &response.encode()).await?;
    let mut plugin = greeting.plugin.clone();
    let mut challenge = greeting.scramble.clone();
    loop {
        let (s, payload) = reader.message(&mut wire).await?;
        seq = s.wrapping_add(1);
        match payload.first() {
            Some(&result::OK) => {
                let ok = result::Ok::parse(&payload).unwrap_or_default();
                return Ok(Backend {
                    wire,
                    reader,
                    dialect: dialect_of(&greeting.server_version),
                    server_version: greeting.server_version,
                    connection_id: greeting.connection_id,
                    status: ok.status,
                });
            }
            Some(&result::ERR) => {
                let e = ErrPacket::parse(&payload).map_or_else(|| "an error".into(), |e| e.message);
                return Err(MysqlError::BackendLogin(e));
            }
            Some(&handshake::AUTH_SWITCH) => {
                let (p, data) = handshake::parse_auth_switch(&payload)
                    .ok_or_else(|| MysqlError::Backend(format!("{addr}: malformed auth switch")))?;
                let reply = answer(&p, password, &data, verified)?;
                plugin = p;
                challenge = data;
                write_message(&mut wire, seq, &reply).await?;
            }
            Some(&AUTH_MORE_DATA) if plugin == "caching_sha2_password" => {
                match payload.get(1) {
                    // Fast authentication succeeded: the OK follows.
                    Some(3) => {}
                    // Full authentication: the password itself, which only
                    // goes to a verified server.
                    Some(4) if verified => {
                        write_message(&mut wire, seq, &auth::cleartext(password)).await?;
                    }
                    // Or encrypted to the server's pinned RSA key.
                    Some(4) if target.server_key.is_some() => {
                        let key = target.server_key.as_ref().map(|k| &k.0);
                        let sealed = key
                            .map(|k| auth::rsa_encrypted(password, &challenge, k))
                            .transpose()
                            .map_err(|e| MysqlError::BackendLogin(format!("RSA: {e}")))?
                            .unwrap_or_default();
                        write_message(&mut wire, seq, &sealed).await?;
                    }
                    Some(4) => {
                        return Err(MysqlError::BackendLogin(
                            "the server asks for caching_sha2_password full authentication, \
                             which sends the password itself: the gateway does so only with \
                             backend_tls = \"verify-full\", or encrypted to the server's RSA key \
                             pinned with backend_public_key_file"
                                .into(),
                        ))
                    }
                    _ => {
                        return Err(MysqlError::Backend(format!(
                            "{addr}: unexpected caching_sha2_password data"
                        )))
                    }
                }
            }
            _ => {
                return Err(MysqlError::Backend(format!(
                    "{addr}: unexpected message during login"
                )))
            }
        }
    }
}

/// The reply to `plugin`'s challenge.
fn answer(
    plugin: &str,
    password: &str,
    challenge: &[u8],
    verified: bool,
) -> Result<Vec<u8>, MysqlError> {
    match plugin {
        "mysql_native_password" => Ok(auth::native(password, challenge)),
        "caching_sha2_password" => Ok(auth::caching_sha2(password, challenge)),
        "client_ed25519" => Ok(auth::ed25519(password, challenge)),
        "mysql_clear_password" if verified => Ok(auth::cleartext(password)),
        "mysql_clear_password" => Err(MysqlError::BackendLogin(
            "the server asks for the password in clear text, which the gateway sends only to \
             a server whose certificate it verified: use backend_tls = \"verify-full\""
                .into(),
        )),
        other => Err(MysqlError::BackendLogin(format!(
            "the server asks for the authentication plugin {other:?}, which the gateway does \
             not support (it supports mysql_native_password, caching_sha2_password, \
             client_ed25519 and, over TLS, mysql_clear_password)"
        ))),
    }
}

async fn upgrade(
    wire: Wire,
    config: Arc<rustls::ClientConfig>,
    host: &str,
) -> Result<Wire, MysqlError> {
    let Wire::Plain(tcp) = wire else {
        return Err(MysqlError::Tls("already encrypted".into()));
    };
    let name = ServerName::try_from(host.to_string())
        .map_err(|e| MysqlError::Tls(format!("{host:?} is not a valid server name: {e}")))?;
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| MysqlError::Tls(e.to_string()))?;
    Ok(Wire::Opened(Box::new(tls)))
}

/// The server's version as executable comments compare it, and whether it
/// is MariaDB. MariaDB before 11 prefixes its version with `5.5.5-` for
/// old clients.
pub(crate) fn dialect_of(server_version: &str) -> Dialect {
    let v = server_version
        .strip_prefix("5.5.5-")
        .unwrap_or(server_version);
    let mut parts = v
        .split(|c: char| !c.is_ascii_digit())
        .take(3)
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor, patch) = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    Dialect {
        version: major * 10_000 + minor.min(99) * 100 + patch.min(99),
        mariadb: server_version.to_ascii_lowercase().contains("mariadb"),
        ansi_quotes: false,
        no_backslash_escapes: false,
    }
}

impl Backend {
    /// Reads what decides how the server reads statements: `sql_mode`
    /// (into the dialect) and the connection's character sets. One the
    /// gateway does not read as the server would is an error.
    pub(crate) async fn read_session(&mut self) -> Result<(), MysqlError> {
        let rows = self
            .own_query(
                "SELECT @@SESSION.sql_mode, @@SESSION.character_set_client, \
                 @@SESSION.character_set_connection",
            )
            .await?;
        let row = rows.into_iter().next().unwrap_or_default();
        let value = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
        apply_sql_mode(&mut self.dialect, &value(0)).map_err(MysqlError::UnsafeSession)?;
        for charset in [value(1), value(2)] {
            if !SAFE_CHARSETS.contains(&charset.to_ascii_lowercase().as_str()) {
                return Err(MysqlError::UnsafeSession(format!(
                    "the session's character set is {charset}, in which a multi-byte character \
                     can hide a backslash from the gateway; it reads only {}",
                    SAFE_CHARSETS.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// Runs a statement of the gateway's own and reads its text rows.
    pub(crate) async fn own_query(
        &mut self,
        sql: &str,
    ) -> Result<Vec<Vec<Option<String>>>, MysqlError> {
        let mut payload = Vec::with_capacity(sql.len() + 1);
        payload.push(0x03);
        payload.extend_from_slice(sql.as_bytes());
        write_message(&mut self.wire, 0, &payload).await?;
        let bad = || MysqlError::Backend("an unexpected answer to the gateway's own query".into());
        let (_, first) = self.reader.message(&mut self.wire).await?;
        if let Some(e) = ErrPacket::parse(&first) {
            return Err(MysqlError::Backend(format!(
                "the gateway's own query failed: {}",
                e.message
            )));
        }
        let columns = Cursor::new(&first).lenenc().ok_or_else(bad)?;
        for _ in 0..columns {
            self.reader.message(&mut self.wire).await?;
        }
        let (_, eof) = self.reader.message(&mut self.wire).await?;
        if !result::is_eof(&eof) {
            return Err(bad());
        }
        let mut rows = Vec::new();
        loop {
            let (_, row) = self.reader.message(&mut self.wire).await?;
            if result::is_eof(&row) {
                return Ok(rows);
            }
            if result::is_err(&row) {
                return Err(bad());
            }
            let mut c = Cursor::new(&row);
            let mut values = Vec::new();
            for _ in 0..columns {
                let v = c.row_value().ok_or_else(bad)?;
                values.push(v.map(|b| String::from_utf8_lossy(b).into_owned()));
            }
            rows.push(values);
        }
    }
}

/// Character sets in which the gateway reads statements as the server
/// does (single-byte, or UTF-8, where no byte of a character is a quote
/// or a backslash).
pub(crate) const SAFE_CHARSETS: [&str; 6] =
    ["utf8mb4", "utf8mb3", "utf8", "latin1", "ascii", "binary"];

/// `sql_mode` values that change the grammar (MSSQL's `[ident]` quoting,
/// Oracle's syntax): the gateway refuses them.
pub(crate) const UNSUPPORTED_MODES: [&str; 2] = ["MSSQL", "ORACLE"];

/// Sets the dialect's quoting flags from a `sql_mode` value; `Err` names a
/// mode the gateway does not read statements under.
pub(crate) fn apply_sql_mode(dialect: &mut Dialect, mode: &str) -> Result<(), String> {
    let has = |flag: &str| mode.split(',').any(|m| m.trim().eq_ignore_ascii_case(flag));
    if let Some(m) = UNSUPPORTED_MODES.iter().find(|m| has(m)) {
        return Err(format!(
            "sql_mode {m} changes how the server reads statements in ways the gateway does not \
             follow"
        ));
    }
    // The combination modes that include ANSI_QUOTES.
    dialect.ansi_quotes = ["ANSI_QUOTES", "ANSI", "DB2", "MAXDB", "POSTGRESQL"]
        .iter()
        .any(|m| has(m));
    dialect.no_backslash_escapes = has("NO_BACKSLASH_ESCAPES");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_read_as_executable_comments_compare_them() {
        let d = dialect_of("5.5.5-10.11.19-MariaDB-0+deb12u1");
        assert_eq!((d.version, d.mariadb), (101119, true));
        let d = dialect_of("8.0.40");
        assert_eq!((d.version, d.mariadb), (80040, false));
        let d = dialect_of("11.4.2-MariaDB");
        assert_eq!((d.version, d.mariadb), (110402, true));
    }

    #[test]
    fn sql_mode_flags_are_found_in_any_case_and_through_ansi() {
        let mut d = dialect_of("8.0.40");
        apply_sql_mode(&mut d, "STRICT_TRANS_TABLES,ansi_quotes").unwrap();
        assert!(d.ansi_quotes && !d.no_backslash_escapes);
        apply_sql_mode(&mut d, "ANSI,NO_BACKSLASH_ESCAPES").unwrap();
        assert!(d.ansi_quotes && d.no_backslash_escapes);
        apply_sql_mode(&mut d, "").unwrap();
        assert!(!d.ansi_quotes && !d.no_backslash_escapes);
        apply_sql_mode(&mut d, "POSTGRESQL").unwrap();
        assert!(d.ansi_quotes);
        assert!(apply_sql_mode(&mut d, "MSSQL").is_err());
        assert!(apply_sql_mode(&mut d, "STRICT_ALL_TABLES,oracle").is_err());
    }
}
