//! Gatehouse's test kit: a real session for an adapter's in-process tests,
//! opened through the real login sequence (a service token minted into a
//! SQLite store in a temporary directory, the policy given as text), with
//! an evidence trail that keeps in memory what the session reported, in
//! order, so a test can assert what was made durable before what.
//!
//! The gateway never depends on this crate; adapters take it as a
//! dev-dependency.

use async_trait::async_trait;
use gatehouse_core::{
    AuditError, AuditEvent, AuditTrail, PendingAppend, Protocol, SessionRecorder, Timestamp,
};
use gatehouse_identity::Authenticator;
use gatehouse_policy::{PolicyEngine, PolicyHandle, PolicyMode};
use gatehouse_session::{Credential, Gatekeeper, LoginAttempt, Session, SessionDetails};
use gatehouse_store::SqliteStore;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// The evidence trail of a test: every event appended, in order. A test
/// may hold appends (they wait, unwritten, as behind a slow disk), then
/// let them through or fail them.
#[derive(Clone, Default)]
pub struct Reported {
    trail: Arc<Mutex<Trail>>,
}

/// An append waiting for its acknowledgement.
type Waiting = (Vec<AuditEvent>, oneshot::Sender<Result<(), AuditError>>);

#[derive(Default)]
struct Trail {
    events: Vec<AuditEvent>,
    /// While held: the appends waiting, in order.
    held: Option<Vec<Waiting>>,
}

impl Reported {
    fn trail(&self) -> std::sync::MutexGuard<'_, Trail> {
        self.trail.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The events so far.
    pub fn events(&self) -> Vec<AuditEvent> {
        self.trail().events.clone()
    }

    /// From now on appends wait, unwritten, until [`Reported::release`] or
    /// [`Reported::fail_held`].
    pub fn hold(&self) {
        self.trail().held.get_or_insert_with(Vec::new);
    }

    /// How many appends wait.
    pub fn waiting(&self) -> usize {
        self.trail().held.as_ref().map_or(0, Vec::len)
    }

    /// Writes the waiting appends, in order, and acknowledges them; appends
    /// no longer wait.
    pub fn release(&self) {
        let mut trail = self.trail();
        for (events, ack) in trail.held.take().unwrap_or_default() {
            trail.events.extend(events);
            let _ = ack.send(Ok(()));
        }
    }

    /// Fails the waiting appends (as a full disk would); appends no longer wait.
    pub fn fail_held(&self) {
        let held = self.trail().held.take().unwrap_or_default();
        for (_, ack) in held {
            let _ = ack.send(Err(AuditError("the test failed this append".into())));
        }
    }

    /// The kinds of the events so far (`auth_success`, `statement`, …).
    pub fn kinds(&self) -> Vec<String> {
        self.events()
            .iter()
            .map(|e| e.kind.as_str().to_string())
            .collect()
    }

    /// The payloads of the `statement` events (decided actions) so far.
    pub fn decided(&self) -> Vec<serde_json::Value> {
        self.events()
            .into_iter()
            .filter(|e| e.kind.as_str() == "statement")
            .map(|e| e.payload)
            .collect()
    }
}

#[async_trait]
impl AuditTrail for Reported {
    async fn append(&self, events: Vec<AuditEvent>) -> Result<(), AuditError> {
        self.enqueue(events).await?.durable().await
    }

    async fn enqueue(&self, events: Vec<AuditEvent>) -> Result<PendingAppend, AuditError> {
        let mut trail = self.trail();
        let Some(held) = trail.held.as_mut() else {
            trail.events.extend(events);
            return Ok(PendingAppend::settled(Ok(())));
        };
        let (ack, acked) = oneshot::channel();
        held.push((events, ack));
        Ok(PendingAppend::waiting(acked))
    }
}

/// A session opened for a test, with what it needs kept alive.
pub struct OpenedSession {
    /// The session.
    pub session: Session,
    /// What it (and its login) reported.
    pub reported: Reported,
    /// The policy it was let in under (an adapter's gate decides with it too).
    pub policy: Arc<PolicyHandle>,
    /// The recorder's store (sessions and statements as recorded).
    pub store: Arc<SqliteStore>,
    _dir: tempfile::TempDir,
}

/// Opens a session of `subject` (in `groups`) on `connection` of `kind`
/// over `protocol`, through the real login sequence, under `policy` (Cedar
/// text) in enforce mode.
pub async fn open_session(
    protocol: Protocol,
    connection: &str,
    kind: &str,
    subject: &str,
    groups: &[&str],
    policy: &str,
) -> OpenedSession {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Arc::new(
        SqliteStore::open(&dir.path().join("gatehouse.db"))
            .await
            .expect("the test store opens"),
    );
    let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
    let minted = gatehouse_identity::mint_service_token(
        subject,
        &groups,
        std::time::Duration::from_secs(3600),
        Timestamp::now(),
    )
    .expect("a valid subject and groups");
    gatehouse_core::Store::insert_token(store.as_ref(), &minted.record)
        .await
        .expect("the token is stored");
    let reported = Reported::default();
    let (recorder, _task) = SessionRecorder::spawn(store.clone(), Arc::new(reported.clone()), 64);
    let engine = PolicyEngine::from_sources(&[("test.cedar".into(), policy.to_string())])
        .expect("the test policy loads");
    let policy = Arc::new(PolicyHandle::new(engine, Vec::new(), PolicyMode::Enforce));
    let gatekeeper = Gatekeeper::new(
        Authenticator::new(store.clone(), None),
        policy.clone(),
        recorder,
        None,
    );
    let attempt = LoginAttempt {
        protocol,
        peer: "127.0.0.1:40000".parse().expect("a socket address"),
        encrypted: true,
        connection: Some(connection),
        kind: Some(kind),
    };
    let knock = gatekeeper.knock(attempt).await.expect("TLS passes");
    let checked = gatekeeper
        .login(&knock, Credential::Token(minted.secret.expose()))
        .await
        .expect("the minted token logs in");
    let session = checked
        .admit()
        .await
        .expect("the login is recorded")
        .open(SessionDetails::default())
        .await
        .expect("the session opens");
    OpenedSession {
        session,
        reported,
        policy,
        store,
        _dir: dir,
    }
}
