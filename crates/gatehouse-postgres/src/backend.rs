//! The backend leg: connect to the resource and log in with the gateway's own
//! credentials. The caller's token never reaches the backend and the
//! backend's password never reaches the caller.

use crate::codec::backend::{
    parse_authentication, parse_backend_key_data, parse_error_fields, Authentication,
};
use crate::codec::{frontend, startup};
use crate::io::read_message;
use crate::stream::PgStream;
use bytes::BytesMut;
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256, SCRAM_SHA_256};
use rustls::pki_types::ServerName;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub use gatehouse_session::{BackendPassword, BackendTls};

/// A configured backend: where it is and how the gateway logs in.
#[derive(Clone, Debug)]
pub struct BackendTarget {
    /// The connection name callers use as `dbname`.
    pub name: String,
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Database on the server.
    pub database: String,
    /// Role the gateway logs in as.
    pub user: String,
    /// That role's password.
    pub password: BackendPassword,
    /// Transport security.
    pub tls: BackendTls,
    /// Limit for TCP connect plus login.
    pub connect_timeout: Duration,
}

/// Why the backend leg could not be opened. Texts are safe to show callers.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// TCP or TLS could not be established.
    #[error("backend for connection \"{connection}\" is unreachable: {reason}")]
    Unreachable {
        /// Connection name.
        connection: String,
        /// What failed (no credentials).
        reason: String,
    },
    /// The backend refused the gateway's login.
    #[error("backend for connection \"{connection}\" refused the gateway's login: {message}")]
    Rejected {
        /// Connection name.
        connection: String,
        /// SQLSTATE from the backend.
        code: String,
        /// The backend's message.
        message: String,
    },
    /// The backend spoke the protocol wrongly or asked for something unsupported.
    #[error("backend for connection \"{connection}\" failed during login: {reason}")]
    Protocol {
        /// Connection name.
        connection: String,
        /// What went wrong.
        reason: String,
    },
}

/// A logged-in backend connection, ready for queries.
pub struct BackendSession {
    /// The stream.
    pub stream: PgStream,
    /// Raw ParameterStatus (and NoticeResponse) messages to replay to the client.
    pub greeting: BytesMut,
    /// The backend's cancel key (pid, secret).
    pub key: (i32, i32),
    /// Bytes that arrived after ReadyForQuery.
    pub leftover: BytesMut,
    /// The schemas an unqualified name resolves in at the start, in order
    /// (`current_schemas(false)`: the configured search path, `$user`
    /// expanded, schemas that do not exist left out).
    pub search_path: Vec<String>,
}

const MAX_LOGIN_MESSAGE: u32 = 1 << 20;

/// Connects to `target` and logs in, passing the client's harmless startup
/// parameters (`application_name`, `client_encoding`, …) along.
pub async fn connect(
    target: &BackendTarget,
    client_params: &[(String, String)],
) -> Result<BackendSession, BackendError> {
    let fut = connect_inner(target, client_params);
    match tokio::time::timeout(target.connect_timeout, fut).await {
        Ok(r) => r,
        Err(_) => Err(BackendError::Unreachable {
            connection: target.name.clone(),
            reason: format!(
                "no answer from {}:{} within {:?}",
                target.host, target.port, target.connect_timeout
            ),
        }),
    }
}

async fn connect_inner(
    t: &BackendTarget,
    client_params: &[(String, String)],
) -> Result<BackendSession, BackendError> {
    let unreachable = |reason: String| BackendError::Unreachable {
        connection: t.name.clone(),
        reason,
    };
    let protocol = |reason: String| BackendError::Protocol {
        connection: t.name.clone(),
        reason,
    };
    let tcp = TcpStream::connect((t.host.as_str(), t.port))
        .await
        .map_err(|e| unreachable(format!("{}:{}: {e}", t.host, t.port)))?;
    let _ = tcp.set_nodelay(true);
    let mut stream = match &t.tls {
        BackendTls::Disable => PgStream::Plain(tcp),
        BackendTls::Prefer(cfg) => negotiate_tls(tcp, cfg, &t.host, false)
            .await
            .map_err(unreachable)?,
        BackendTls::Require(cfg) | BackendTls::VerifyFull(cfg) => {
            negotiate_tls(tcp, cfg, &t.host, true)
                .await
                .map_err(unreachable)?
        }
    };

    let mut out = BytesMut::with_capacity(256);
    // The gateway's own user and database last: the server keeps the last
    // value of a key, so nothing before them can replace them.
    let mut params: Vec<(&str, &str)> = client_params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    params.extend([("user", t.user.as_str()), ("database", t.database.as_str())]);
    startup::startup_message(&mut out, params);
    send(&mut stream, &mut out).await.map_err(unreachable)?;

    let mut buf = BytesMut::with_capacity(4096);
    let mut scram: Option<ScramSha256> = None;
    loop {
        let (ty, body) = next_login_message(&mut stream, &mut buf)
            .await
            .map_err(unreachable)?;
        match ty {
            b'R' => {
                let auth = parse_authentication(&body).map_err(|e| protocol(e.to_string()))?;
                match auth {
                    Authentication::Ok => break,
                    Authentication::CleartextPassword => {
                        frontend::password_message(&mut out, t.password.expose().as_bytes());
                    }
                    Authentication::Md5Password { salt } => {
                        let hash = postgres_protocol::authentication::md5_hash(
                            t.user.as_bytes(),
                            t.password.expose().as_bytes(),
                            salt,
                        );
                        frontend::password_message(&mut out, hash.as_bytes());
                    }
                    Authentication::Sasl { mechanisms } => {
                        if !mechanisms.iter().any(|m| m == SCRAM_SHA_256) {
                            return Err(protocol(format!(
                                "backend offers SASL mechanisms {mechanisms:?}; the gateway supports {SCRAM_SHA_256}"
                            )));
                        }
                        // Channel binding is not used ("n"): the server accepts plain
                        // SCRAM-SHA-256 on TLS and non-TLS connections alike.
                        let s = ScramSha256::new(
                            t.password.expose().as_bytes(),
                            ChannelBinding::unsupported(),
                        );
                        frontend::sasl_initial_response(&mut out, SCRAM_SHA_256, s.message());
                        scram = Some(s);
                    }
                    Authentication::SaslContinue(data) => {
                        let s = scram
                            .as_mut()
                            .ok_or_else(|| protocol("SASL continue before SASL start".into()))?;
                        s.update(&data)
                            .map_err(|e| protocol(format!("SCRAM: {e}")))?;
                        frontend::sasl_response(&mut out, s.message());
                    }
                    Authentication::SaslFinal(data) => {
                        let mut s = scram
                            .take()
                            .ok_or_else(|| protocol("SASL final before SASL start".into()))?;
                        s.finish(&data).map_err(|e| {
                            protocol(format!("SCRAM server signature did not verify: {e}"))
                        })?;
                    }
                    Authentication::Unsupported(code) => {
                        return Err(protocol(format!(
                            "backend asks for authentication method {code}; the gateway supports SCRAM-SHA-256, MD5 and password"
                        )));
                    }
                }
                if !out.is_empty() {
                    send(&mut stream, &mut out).await.map_err(unreachable)?;
                }
            }
            b'E' => return Err(rejected(t, &body)),
            b'N' => {}
            other => {
                return Err(protocol(format!(
                    "unexpected message {:?} during authentication",
                    other as char
                )))
            }
        }
    }

    let mut greeting = BytesMut::with_capacity(512);
    let mut key = None;
    loop {
        let (ty, body) = next_login_message(&mut stream, &mut buf)
            .await
            .map_err(unreachable)?;
        match ty {
            b'S' | b'N' => crate::codec::backend::raw(&mut greeting, ty, &body),
            b'K' => key = Some(parse_backend_key_data(&body).map_err(|e| protocol(e.to_string()))?),
            b'Z' => break,
            b'E' => return Err(rejected(t, &body)),
            other => {
                return Err(protocol(format!(
                    "unexpected message {:?} after authentication",
                    other as char
                )))
            }
        }
    }
    let search_path = first_column(
        &mut stream,
        &mut buf,
        "SELECT pg_catalog.unnest(pg_catalog.current_schemas(false))::text",
    )
    .await
    .map_err(|e| protocol(format!("reading the search path: {e}")))?;
    Ok(BackendSession {
        stream,
        greeting,
        // A backend that sends no key cannot be cancelled; (0, 0) is never registered.
        key: key.unwrap_or((0, 0)),
        leftover: buf,
        search_path,
    })
}

/// The next whole message during login; EOF is an error here.
async fn next_login_message(
    stream: &mut PgStream,
    buf: &mut BytesMut,
) -> Result<(u8, BytesMut), String> {
    read_message(stream, buf, MAX_LOGIN_MESSAGE)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "the backend closed the connection".to_string())
}

fn rejected(t: &BackendTarget, body: &[u8]) -> BackendError {
    match parse_error_fields(body) {
        Ok(f) => BackendError::Rejected {
            connection: t.name.clone(),
            code: f.code,
            message: f.message,
        },
        Err(e) => BackendError::Protocol {
            connection: t.name.clone(),
            reason: format!("malformed error from backend: {e}"),
        },
    }
}

/// Sends what `out` holds (flushed, see [`crate::io::send`]) and empties it.
async fn send(stream: &mut PgStream, out: &mut BytesMut) -> Result<(), String> {
    crate::io::send(stream, out)
        .await
        .map_err(|e| e.to_string())?;
    out.clear();
    Ok(())
}

async fn negotiate_tls(
    mut tcp: TcpStream,
    cfg: &Arc<rustls::ClientConfig>,
    host: &str,
    required: bool,
) -> Result<PgStream, String> {
    let mut out = BytesMut::with_capacity(8);
    startup::ssl_request(&mut out);
    tcp.write_all(&out).await.map_err(|e| e.to_string())?;
    let answer = tcp.read_u8().await.map_err(|e| e.to_string())?;
    match answer {
        b'S' => {
            let name = ServerName::try_from(host.to_string())
                .map_err(|e| format!("invalid TLS server name {host:?}: {e}"))?;
            let tls = tokio_rustls::TlsConnector::from(cfg.clone())
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS handshake failed: {e}"))?;
            Ok(PgStream::ClientTls(Box::new(tls)))
        }
        b'N' if !required => Ok(PgStream::Plain(tcp)),
        b'N' => Err("the server does not accept TLS but backend_tls requires it".into()),
        other => Err(format!(
            "unexpected answer {:?} to SSLRequest",
            other as char
        )),
    }
}

mod own_query;
pub(crate) use own_query::{first_column, own_query, own_query_rows};
