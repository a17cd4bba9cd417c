//! Gatehouse's test kit: a real session for an adapter's in-process tests,
//! opened through the real login sequence (a service token minted into a
//! SQLite store in a temporary directory, the policy given as text), with
//! an evidence trail that keeps in memory what the session reported, in
//! order, so a test can assert what was made durable before what.
//!
//! The gateway never depends on this crate; adapters take it as a
//! dev-dependency.

use async_trait::async_trait;
use gatehouse_core::{AuditError, AuditEvent, AuditTrail, Protocol, SessionRecorder, Timestamp};
use gatehouse_identity::Authenticator;
use gatehouse_policy::{PolicyEngine, PolicyHandle, PolicyMode};
use gatehouse_session::{Credential, Gatekeeper, LoginAttempt, Session, SessionDetails};
use gatehouse_store::SqliteStore;
use std::sync::{Arc, Mutex};

/// The evidence trail of a test: every event appended, in order.
#[derive(Clone, Default)]
pub struct Reported {
    events: Arc<Mutex<Vec<AuditEvent>>>,
}

impl Reported {
    /// The events so far.
    pub fn events(&self) -> Vec<AuditEvent> {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
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
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(events);
        Ok(())
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
