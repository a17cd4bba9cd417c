//! One caller connection's session: opened by its first authenticated
//! request to a connection, numbering its requests, ended when the caller
//! closes (or switches identity or connection on the same socket, which
//! ends one session and opens the next).

use gatehouse_core::{
    AuditEvent, AuthAttempt, Identity, Protocol, SessionEnd, SessionEndReason, SessionId,
    SessionRecorder, SessionStart, Timestamp,
};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// An open session.
pub(crate) struct OpenSession {
    pub(crate) id: SessionId,
    pub(crate) identity: Identity,
    pub(crate) connection: String,
    pub(crate) protocol: Protocol,
    seq: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
}

impl OpenSession {
    /// The next request's number, from 1.
    pub(crate) fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// How long a credential checked on a caller connection is taken again
/// without asking the store or the issuer's keys: a revoked token is
/// refused on a kept-alive connection at most this much later (a
/// PostgreSQL session is checked once, at its login).
const CREDENTIAL_REUSE: std::time::Duration = std::time::Duration::from_secs(10);

/// A credential this connection presented and the identity it proved.
struct Checked {
    digest: [u8; 32],
    identity: Identity,
    at: std::time::Instant,
}

/// The sessions of one caller connection (one at a time).
pub(crate) struct CallerConnection {
    pub(crate) peer: SocketAddr,
    pub(crate) recorder: SessionRecorder,
    current: Mutex<Option<Arc<OpenSession>>>,
    checked: Mutex<Option<Checked>>,
}

impl CallerConnection {
    pub(crate) fn new(peer: SocketAddr, recorder: SessionRecorder) -> Self {
        Self {
            peer,
            recorder,
            current: Mutex::new(None),
            checked: Mutex::new(None),
        }
    }

    /// The identity `credential` proved on this connection in the last
    /// few seconds (and, for an OIDC token, not expired since).
    pub(crate) fn recently_checked(&self, credential: &str) -> Option<Identity> {
        let digest = digest(credential);
        let guard = self.checked.lock().unwrap_or_else(|p| p.into_inner());
        let c = guard.as_ref()?;
        let fresh = c.at.elapsed() < CREDENTIAL_REUSE
            && subtle_eq(&c.digest, &digest)
            && match &c.identity.source {
                gatehouse_core::IdentitySource::Oidc(o) => {
                    o.expires_at * 1000 > Timestamp::now().unix_millis()
                }
                _ => true,
            };
        fresh.then(|| c.identity.clone())
    }

    /// Remembers that `credential` proved `identity` just now.
    pub(crate) fn remember_check(&self, credential: &str, identity: &Identity) {
        *self.checked.lock().unwrap_or_else(|p| p.into_inner()) = Some(Checked {
            digest: digest(credential),
            identity: identity.clone(),
            at: std::time::Instant::now(),
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Arc<OpenSession>>> {
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The open session for this identity and connection, if there is one.
    pub(crate) fn current(
        &self,
        identity: &Identity,
        connection: &str,
    ) -> Option<Arc<OpenSession>> {
        self.lock()
            .as_ref()
            .filter(|s| s.identity == *identity && s.connection == connection)
            .cloned()
    }

    /// Opens a session (ending any other first): the login and the
    /// session start are made durable in the evidence log before it is used.
    pub(crate) async fn open(
        &self,
        identity: Identity,
        connection: &str,
        protocol: Protocol,
        user_agent: Option<String>,
    ) -> Result<Arc<OpenSession>, String> {
        self.end(
            SessionEndReason::ClientTerminated,
            Some("the caller switched identity or connection"),
        )
        .await;
        let client_addr = self.peer.to_string();
        let attempt = AuthAttempt {
            protocol: protocol.as_str(),
            client_addr: &client_addr,
            connection: Some(connection),
        };
        self.recorder
            .audit(vec![AuditEvent::auth_success(&attempt, &identity)])
            .await
            .map_err(|e| e.to_string())?;
        let start = SessionStart {
            id: SessionId::new(),
            identity: identity.clone(),
            connection: connection.to_string(),
            protocol: protocol.as_str().to_string(),
            client_addr,
            client_user: String::new(),
            application_name: user_agent,
            started_at: Timestamp::now(),
        };
        self.recorder
            .session_started(&start)
            .await
            .map_err(|e| e.to_string())?;
        let s = Arc::new(OpenSession {
            id: start.id,
            identity,
            connection: connection.to_string(),
            protocol,
            seq: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
        });
        *self.lock() = Some(s.clone());
        Ok(s)
    }

    /// Ends the open session, if any.
    pub(crate) async fn end(&self, reason: SessionEndReason, detail: Option<&str>) {
        let Some(s) = self.lock().take() else {
            return;
        };
        let end = SessionEnd {
            id: s.id,
            ended_at: Timestamp::now(),
            bytes_from_client: s.bytes_in.load(Ordering::Relaxed),
            bytes_to_client: s.bytes_out.load(Ordering::Relaxed),
            reason,
            detail: detail.map(str::to_string),
        };
        if self.recorder.session_ended(end).await.is_err() {
            tracing::error!(session = %s.id, "session recorder stopped; the session end is not recorded");
        }
    }

    /// Logs a refused login (durably); `false` when even that failed.
    pub(crate) async fn auth_failed(
        &self,
        connection: Option<&str>,
        subject: Option<&str>,
        stage: &str,
        reason: &str,
    ) -> bool {
        let client_addr = self.peer.to_string();
        let attempt = AuthAttempt {
            protocol: Protocol::Http.as_str(),
            client_addr: &client_addr,
            connection,
        };
        let event = AuditEvent::auth_failure(&attempt, subject, stage, reason);
        match self.recorder.audit(vec![event]).await {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = %e, "could not log a refused request");
                false
            }
        }
    }
}

/// A credential's SHA-256: what the connection keeps instead of the credential.
fn digest(credential: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(credential.as_bytes()).into()
}

/// Constant-time equality of two digests.
fn subtle_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}
