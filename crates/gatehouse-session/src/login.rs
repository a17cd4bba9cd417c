//! The login sequence, written once for every protocol: the credential
//! checked, the connection looked up, the connect policy decided (audit
//! mode included), the identity's session count checked, and every refusal
//! and the login itself durable in the evidence log before the adapter goes
//! on. An adapter supplies the credential it read from its wire and words
//! the [`LoginRefusal`] in its protocol's form.

use crate::failures::FailedLogins;
use crate::occupancy::{Occupancy, SessionSlot};
use crate::session::{Session, SessionDetails};
use gatehouse_core::{
    ApprovalDesk, AuditEvent, AuthAttempt, Identity, Protocol, SessionRecorder, StartError,
    Timestamp,
};
use gatehouse_identity::{Authenticator, CredentialKind};
use gatehouse_policy::{ConnectRequest, Decision, PolicyHandle, PolicyMode};
use std::net::SocketAddr;
use std::sync::Arc;

/// Sessions one identity may hold at once unless configured otherwise
/// (`[limits] max_sessions_per_identity`).
pub const DEFAULT_MAX_SESSIONS_PER_IDENTITY: u32 = 50;

/// Lets callers in: shared by every listener of a gateway.
#[derive(Clone)]
pub struct Gatekeeper {
    authenticator: Authenticator,
    policy: Arc<PolicyHandle>,
    recorder: SessionRecorder,
    approvals: Option<Arc<ApprovalDesk>>,
    occupancy: Arc<Occupancy>,
    max_sessions_per_identity: u32,
    plaintext_on_loopback: bool,
    failed_logins: Arc<FailedLogins>,
}

/// Who is knocking, from where, and for which connection.
#[derive(Clone, Copy, Debug)]
pub struct LoginAttempt<'a> {
    /// The protocol it speaks.
    pub protocol: Protocol,
    /// The caller's address.
    pub peer: SocketAddr,
    /// It came over TLS.
    pub encrypted: bool,
    /// The connection it asked for (`None`: it named none the gateway could read).
    pub connection: Option<&'a str>,
    /// The asked-for connection's kind (`postgres`, `http`, `mcp`) when it is
    /// configured; `None` when no connection of that name is.
    pub kind: Option<&'a str>,
}

/// A caller whose transport passed (TLS, or loopback where allowed): the
/// only way to [`Gatekeeper::identify`] it, so no adapter can ask for a
/// credential over a connection that may not carry one.
#[derive(Clone, Copy, Debug)]
pub struct Knock<'a> {
    attempt: LoginAttempt<'a>,
}

impl<'a> Knock<'a> {
    /// What was asked.
    pub fn attempt(&self) -> &LoginAttempt<'a> {
        &self.attempt
    }
}

/// What the caller presented.
#[derive(Clone, Debug)]
pub enum Credential<'a> {
    /// Nothing the adapter could read as a credential.
    Missing,
    /// A service token or an OIDC token.
    Token(&'a str),
    /// An identity this caller connection proved moments ago (the HTTP
    /// adapter's kept-alive connections); not checked again.
    Proven(Identity),
    /// An SSH public key the caller proved it holds (its wire encoding):
    /// a key registered to an identity.
    SshKey(&'a [u8]),
    /// The identity in a certificate the gateway signed, whose signature,
    /// validity and options the adapter checked: checked again against
    /// the credential it was issued for.
    Certified(Identity),
}

/// Why a caller was not let in. Each has been written to the evidence log
/// (or, when even that failed, is [`LoginRefusal::EvidenceUnavailable`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoginRefusal {
    /// The caller did not use TLS, and is not on loopback where the gateway
    /// is configured to allow that.
    TlsRequired,
    /// No credential was presented.
    MissingCredential,
    /// The credential was not accepted.
    BadCredential {
        /// Why, in words safe to show (never the credential).
        reason: String,
        /// It had the shape of a JWT (an OIDC token), not a service token.
        jwt: bool,
    },
    /// No connection of the asked-for name is configured.
    UnknownConnection {
        /// The name asked for (empty when none).
        name: String,
    },
    /// The connect policy refused this identity this connection.
    ConnectDenied {
        /// The policy's reason.
        reason: String,
    },
    /// The caller's address failed to log in as often as it may this
    /// minute; its logins are refused, unchecked, until the minute is over.
    TooManyFailures {
        /// The address.
        ip: std::net::IpAddr,
        /// The limit.
        limit: u32,
    },
    /// The identity has as many sessions open as it may.
    TooManySessions {
        /// The identity's subject.
        subject: String,
        /// Its open sessions.
        open: u32,
    },
    /// The adapter's own check refused the login (a startup setting).
    Refused {
        /// The stage recorded (`setting`, …).
        stage: &'static str,
        /// What the caller is told.
        message: String,
    },
    /// The evidence log did not take the login (or its refusal), so nothing
    /// goes on.
    EvidenceUnavailable,
    /// An SSH key registered to no one: not logged and not counted as a
    /// failed login (a client offers each of its keys in turn).
    UnknownKey,
}

impl LoginRefusal {
    /// The stage the refusal is recorded under.
    pub fn stage(&self) -> &'static str {
        match self {
            Self::TlsRequired => "transport",
            Self::MissingCredential | Self::BadCredential { .. } | Self::UnknownKey => "credential",
            Self::UnknownConnection { .. } => "connection",
            Self::ConnectDenied { .. } => "policy",
            Self::TooManySessions { .. } | Self::TooManyFailures { .. } => "limit",
            Self::Refused { stage, .. } => stage,
            Self::EvidenceUnavailable => "evidence",
        }
    }

    /// What the evidence log keeps as the reason (and the gist of what the
    /// caller is told).
    pub fn message(&self) -> String {
        match self {
            Self::TlsRequired => "gatehouse requires TLS".into(),
            Self::MissingCredential => "no credential was presented".into(),
            Self::BadCredential { reason, .. } => format!("authentication failed: {reason}"),
            Self::UnknownConnection { name } => {
                format!("connection \"{name}\" is not configured on this gateway")
            }
            Self::ConnectDenied { reason } => format!("gatehouse: permission denied: {reason}"),
            Self::TooManyFailures { ip, limit } => format!(
                "gatehouse: {limit} failed logins from {ip} within a minute, the most one address \
                 may ([limits] failed_logins_per_minute): its logins are refused for up to a minute"
            ),
            Self::TooManySessions { subject, open } => format!(
                "gatehouse: {subject} has {open} sessions open, the most one identity may \
                 ([limits] max_sessions_per_identity)"
            ),
            Self::Refused { message, .. } => message.clone(),
            Self::EvidenceUnavailable => {
                "gatehouse could not write its evidence log, so the connection was not opened"
                    .into()
            }
            Self::UnknownKey => "this SSH key is not registered to any identity".into(),
        }
    }
}

/// A caller whose credential, connection and connect policy passed, not yet
/// logged in: the adapter may still refuse it ([`Checked::refuse`]), or
/// [`Checked::admit`] it.
#[must_use = "a checked caller is logged in by admit() or refused by refuse()"]
pub struct Checked {
    gate: Gatekeeper,
    identity: Identity,
    protocol: Protocol,
    peer: SocketAddr,
    connection: String,
    slot: SessionSlot,
    settings: Vec<(String, String)>,
}

impl Gatekeeper {
    /// A gatekeeper over these parts.
    pub fn new(
        authenticator: Authenticator,
        policy: Arc<PolicyHandle>,
        recorder: SessionRecorder,
        approvals: Option<Arc<ApprovalDesk>>,
    ) -> Self {
        Self {
            authenticator,
            policy,
            recorder,
            approvals,
            occupancy: Arc::default(),
            max_sessions_per_identity: DEFAULT_MAX_SESSIONS_PER_IDENTITY,
            plaintext_on_loopback: false,
            failed_logins: Arc::default(),
        }
    }

    /// At most `per_minute` failed logins a minute from one client address
    /// (`[limits] failed_logins_per_minute`; 0: no limit); beyond it the
    /// address's logins are refused before any credential is checked.
    pub fn with_failed_login_limit(mut self, per_minute: u32) -> Self {
        let limit = (per_minute > 0).then_some(per_minute);
        self.failed_logins = Arc::new(FailedLogins::new(limit));
        self
    }

    /// At most `max` sessions per identity at once (`[limits]
    /// max_sessions_per_identity`), counted across every listener.
    pub fn with_max_sessions_per_identity(mut self, max: u32) -> Self {
        self.max_sessions_per_identity = max;
        self
    }

    /// Lets callers on a loopback address in without TLS.
    pub fn with_plaintext_on_loopback(mut self, allowed: bool) -> Self {
        self.plaintext_on_loopback = allowed;
        self
    }

    /// Whether a connection from `peer` may go without TLS.
    fn plaintext_allowed(&self, peer: &SocketAddr) -> bool {
        self.plaintext_on_loopback && peer.ip().is_loopback()
    }

    /// Open connections and sessions, shared by every listener.
    pub fn occupancy(&self) -> &Arc<Occupancy> {
        &self.occupancy
    }

    /// Checks the transport before anything else: TLS, or plaintext from
    /// loopback where allowed. Call it before asking for a credential. A
    /// refusal is logged first.
    pub async fn knock<'a>(&self, attempt: LoginAttempt<'a>) -> Result<Knock<'a>, LoginRefusal> {
        if !attempt.encrypted && !self.plaintext_allowed(&attempt.peer) {
            return Err(self
                .refused(&attempt, None, LoginRefusal::TlsRequired)
                .await);
        }
        Ok(Knock { attempt })
    }

    /// Proves who the caller is. A refusal is logged first.
    pub async fn identify(
        &self,
        knock: &Knock<'_>,
        credential: Credential<'_>,
    ) -> Result<Identity, LoginRefusal> {
        let attempt = &knock.attempt;
        if let Credential::Proven(identity) = credential {
            return Ok(identity);
        }
        let ip = attempt.peer.ip();
        if let Some(blocked) = self.failed_logins.blocked(ip, std::time::Instant::now()) {
            let refusal = LoginRefusal::TooManyFailures {
                ip,
                limit: blocked.limit,
            };
            // One event a minute per address: an attack cannot flood the log.
            let Some(unlogged) = blocked.log else {
                return Err(refusal);
            };
            let reason = match unlogged {
                0 => refusal.message(),
                n => format!(
                    "{} ({n} more refused since the last event)",
                    refusal.message()
                ),
            };
            return Err(
                match self
                    .log_failure(attempt, None, refusal.stage(), &reason)
                    .await
                {
                    true => refusal,
                    false => LoginRefusal::EvidenceUnavailable,
                },
            );
        }
        let (token, proof) = match credential {
            Credential::Proven(_) | Credential::Missing => (None, None),
            Credential::Token(t) => (Some(t), None),
            Credential::SshKey(blob) => (
                None,
                Some(self.authenticator.ssh_key(blob, Timestamp::now()).await),
            ),
            Credential::Certified(identity) => (
                None,
                Some(
                    self.authenticator
                        .certified(identity, Timestamp::now())
                        .await,
                ),
            ),
        };
        if let Some(proof) = proof {
            return match proof {
                Ok(i) => Ok(i.into_identity()),
                Err(gatehouse_identity::AuthError::UnknownSshKey) => Err(LoginRefusal::UnknownKey),
                Err(e) => {
                    if e.caused_by_caller() {
                        self.failed_logins.failed(ip, std::time::Instant::now());
                    }
                    let refusal = LoginRefusal::BadCredential {
                        reason: e.to_string(),
                        jwt: false,
                    };
                    Err(self.refused(attempt, None, refusal).await)
                }
            };
        }
        let Some(token) = token else {
            // No credential at all counts as a failed login too: each one is
            // an event in the log.
            self.failed_logins.failed(ip, std::time::Instant::now());
            return Err(self
                .refused(attempt, None, LoginRefusal::MissingCredential)
                .await);
        };
        match self
            .authenticator
            .authenticate(token, Timestamp::now())
            .await
        {
            Ok(i) => Ok(i.into_identity()),
            Err(e) => {
                // The store or an issuer being unreachable is not the caller's
                // failure: healthy clients retrying then must not be locked out.
                if e.caused_by_caller() {
                    self.failed_logins.failed(ip, std::time::Instant::now());
                }
                let refusal = LoginRefusal::BadCredential {
                    reason: e.to_string(),
                    jwt: CredentialKind::of(token) == CredentialKind::Jwt,
                };
                Err(self.refused(attempt, None, refusal).await)
            }
        }
    }

    /// Checks that `identity` may open a session on the asked-for
    /// connection: it is configured, the connect policy permits it (in audit
    /// mode a refusal is logged and let through) and the identity has a
    /// session to spare. A refusal is logged first.
    pub async fn check(
        &self,
        knock: &Knock<'_>,
        identity: Identity,
    ) -> Result<Checked, LoginRefusal> {
        let attempt = &knock.attempt;
        let subject = Some(identity.subject.as_str());
        let (Some(connection), Some(kind)) = (attempt.connection, attempt.kind) else {
            let name = attempt.connection.unwrap_or_default().to_string();
            let refusal = LoginRefusal::UnknownConnection { name };
            return Err(self.refused(attempt, subject, refusal).await);
        };
        let (engine, _) = self.policy.current();
        let decision = engine.decide_connect(&ConnectRequest {
            identity: &identity,
            connection,
            kind,
            client_ip: attempt.peer.ip(),
            now: Timestamp::now(),
        });
        match (decision, self.policy.mode()) {
            (Decision::Allow { .. }, _) => {}
            (refused, PolicyMode::Audit) => tracing::info!(
                identity = %identity.subject, connection, decision = refused.name(),
                "audit mode: letting through a connection the policy refuses"
            ),
            (
                Decision::Deny { reason, .. } | Decision::Review { reason, .. },
                PolicyMode::Enforce,
            ) => {
                let refusal = LoginRefusal::ConnectDenied { reason };
                return Err(self.refused(attempt, subject, refusal).await);
            }
        }
        let max = self.max_sessions_per_identity;
        let slot = match self.occupancy.session(&identity.subject, max) {
            Ok(slot) => slot,
            Err(open) => {
                let refusal = LoginRefusal::TooManySessions {
                    subject: identity.subject.clone(),
                    open,
                };
                return Err(self.refused(attempt, subject, refusal).await);
            }
        };
        Ok(Checked {
            gate: self.clone(),
            protocol: attempt.protocol,
            peer: attempt.peer,
            connection: connection.to_string(),
            identity,
            slot,
            settings: Vec::new(),
        })
    }

    /// [`Self::identify`] then [`Self::check`].
    pub async fn login(
        &self,
        knock: &Knock<'_>,
        credential: Credential<'_>,
    ) -> Result<Checked, LoginRefusal> {
        let identity = self.identify(knock, credential).await?;
        self.check(knock, identity).await
    }

    /// Logs a refusal that came before any login (the gateway's connection
    /// limit): `false` when even that could not be written.
    pub async fn log_refusal(&self, attempt: &LoginAttempt<'_>, stage: &str, reason: &str) -> bool {
        self.log_failure(attempt, None, stage, reason).await
    }

    /// Logs `refusal` and hands it back; if even that cannot be logged, the
    /// caller is told the gateway cannot record logins.
    async fn refused(
        &self,
        attempt: &LoginAttempt<'_>,
        subject: Option<&str>,
        refusal: LoginRefusal,
    ) -> LoginRefusal {
        let reason = refusal.message();
        match self
            .log_failure(attempt, subject, refusal.stage(), &reason)
            .await
        {
            true => refusal,
            false => LoginRefusal::EvidenceUnavailable,
        }
    }

    /// Writes an `auth_failure` event; `false` when it could not be written.
    async fn log_failure(
        &self,
        attempt: &LoginAttempt<'_>,
        subject: Option<&str>,
        stage: &str,
        reason: &str,
    ) -> bool {
        let client_addr = attempt.peer.to_string();
        let at = AuthAttempt {
            protocol: attempt.protocol.as_str(),
            client_addr: &client_addr,
            connection: attempt.connection,
        };
        let event = AuditEvent::auth_failure(&at, subject, stage, reason);
        match self.recorder.audit(vec![event]).await {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = %e, "could not log a refused login");
                false
            }
        }
    }
}

impl Checked {
    /// The identity that passed.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    fn attempt(&self) -> LoginAttempt<'_> {
        LoginAttempt {
            protocol: self.protocol,
            peer: self.peer,
            encrypted: true,
            connection: Some(&self.connection),
            kind: None,
        }
    }

    /// The session settings the caller asked for at login and the adapter
    /// passes on (after deciding them): the login's event names them.
    pub fn with_settings(mut self, settings: Vec<(String, String)>) -> Self {
        self.settings = settings;
        self
    }

    /// Refuses the login for the adapter's own reason (logged first).
    pub async fn refuse(self, stage: &'static str, message: String) -> LoginRefusal {
        let subject = Some(self.identity.subject.as_str());
        let refusal = LoginRefusal::Refused { stage, message };
        self.gate.refused(&self.attempt(), subject, refusal).await
    }

    /// Logs the login in (durably: write-ahead, before the adapter reaches
    /// the resource for it). Then [`Admitted::open`] opens its session.
    pub async fn admit(self) -> Result<Admitted, LoginRefusal> {
        let client_addr = self.peer.to_string();
        let at = AuthAttempt {
            protocol: self.protocol.as_str(),
            client_addr: &client_addr,
            connection: Some(&self.connection),
        };
        let event = if self.settings.is_empty() {
            AuditEvent::auth_success(&at, &self.identity)
        } else {
            AuditEvent::auth_success_with_settings(&at, &self.identity, &self.settings)
        };
        if let Err(e) = self.gate.recorder.audit(vec![event]).await {
            tracing::error!(error = %e, "could not log a login; refusing it");
            return Err(LoginRefusal::EvidenceUnavailable);
        }
        Ok(Admitted(self))
    }
}

/// A caller logged in, whose session is not open yet (the adapter may still
/// be reaching the resource).
#[must_use = "an admitted caller's session is opened by open()"]
pub struct Admitted(Checked);

impl Admitted {
    /// Opens the session: its start is durable in the evidence log and the
    /// session store before this returns.
    pub async fn open(self, details: SessionDetails) -> Result<Session, StartError> {
        let Checked {
            gate,
            identity,
            protocol,
            peer,
            connection,
            slot,
            settings: _,
        } = self.0;
        Session::open(
            gate.recorder,
            gate.approvals,
            identity,
            connection,
            protocol,
            peer,
            details,
            slot,
        )
        .await
    }
}
