//! One caller connection's session: opened by its first authenticated
//! request to a connection (on the core's session object), taking the
//! numbers of its requests, ended when the caller closes (or switches
//! identity or connection on the same socket, which ends one session and
//! opens the next).

use gatehouse_core::{Identity, SessionEndReason, Timestamp};
use gatehouse_session::Session;
use std::net::SocketAddr;
use std::sync::Mutex;

/// How long a credential checked on a caller connection is taken again
/// without asking the store or the issuer's keys: a token revoked on any
/// node sharing the store is refused on a kept-alive connection at most
/// this much later (a PostgreSQL session is checked once, at its login).
/// A store read a second per busy connection costs little.
const CREDENTIAL_REUSE: std::time::Duration = std::time::Duration::from_secs(1);

/// A credential this connection presented and the identity it proved.
struct Checked {
    digest: [u8; 32],
    identity: Identity,
    at: std::time::Instant,
}

/// The sessions of one caller connection (one at a time).
pub(crate) struct CallerConnection {
    pub(crate) peer: SocketAddr,
    /// It came over TLS.
    pub(crate) encrypted: bool,
    current: Mutex<Option<Session>>,
    checked: Mutex<Option<Checked>>,
}

impl CallerConnection {
    pub(crate) fn new(peer: SocketAddr, encrypted: bool) -> Self {
        Self {
            peer,
            encrypted,
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

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Session>> {
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The open session for this identity and connection, if there is one.
    pub(crate) fn current(&self, identity: &Identity, connection: &str) -> Option<Session> {
        self.lock()
            .as_ref()
            .filter(|s| s.identity() == identity && s.connection() == connection)
            .cloned()
    }

    /// Makes `session` this connection's open session.
    pub(crate) fn opened(&self, session: Session) {
        *self.lock() = Some(session);
    }

    /// Ends the open session, if any.
    pub(crate) async fn end(&self, reason: SessionEndReason, detail: Option<&str>) {
        let Some(s) = self.lock().take() else {
            return;
        };
        s.close(reason, detail.map(str::to_string)).await;
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
