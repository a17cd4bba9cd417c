//! One caller's SSH connection: its login (the token as the password, or
//! typed at a keyboard-interactive prompt, the connection named by the SSH
//! user name), then each channel it opens handed to its own task. Requests
//! are answered here, in the order they came (the SSH client matches the
//! answers to its requests by order); what they ask for is acted on by
//! the channel's task.

use crate::listener::Gw;
use crate::target::SshTarget;
use crate::upstream::{self, Upstream};
use gatehouse_core::Protocol;
use gatehouse_session::{Credential, LoginAttempt, LoginRefusal, Session, SessionDetails};
use russh::server::{self, Auth, ChannelOpenHandle, Msg, Response};
use russh::{Channel, ChannelId, ChannelOpenFailure, MethodKind, MethodSet};
use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::OnceCell;

/// The prompt of the keyboard-interactive login ("assword" in it is what
/// sshpass waits for).
const PROMPT: &str = "Password (your Gatehouse or OIDC token): ";
/// Channels one caller connection may have open at once.
pub(crate) const MAX_CHANNELS: usize = 64;

/// Counts a connection's open channel while it lasts.
pub(crate) struct ChannelSlot(Arc<std::sync::atomic::AtomicUsize>);

/// A slot for one more channel of a connection whose open channels
/// `open` counts, or `None` when it has [`MAX_CHANNELS`] open.
pub(crate) fn channel_slot(open: &Arc<std::sync::atomic::AtomicUsize>) -> Option<ChannelSlot> {
    let n = open.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    let slot = ChannelSlot(open.clone());
    (n < MAX_CHANNELS).then_some(slot)
}

impl Drop for ChannelSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// A caller logged in: its session, the connection and account it asked
/// for, and the gateway's connection to the target (made when the first
/// channel needs it, shared by all).
pub(crate) struct Login {
    pub(crate) gw: Arc<Gw>,
    pub(crate) peer: SocketAddr,
    pub(crate) session: Session,
    pub(crate) target: Arc<SshTarget>,
    /// The account on the target.
    pub(crate) user: String,
    upstream: OnceCell<Result<Arc<Upstream>, String>>,
    /// The caller's connection, to open agent channels to it.
    pub(crate) caller: std::sync::OnceLock<server::Handle>,
    /// Channels of this connection whose agent forwarding the host was
    /// asked for and that are still open: the host may open agent
    /// connections only while there is one.
    pub(crate) agent: Arc<std::sync::atomic::AtomicUsize>,
    /// Channels of this connection open now (the caller's and those the
    /// host opens back), against [`MAX_CHANNELS`].
    pub(crate) open_channels: Arc<std::sync::atomic::AtomicUsize>,
    /// The channels agent forwarding was allowed on.
    pub(crate) agent_channels: std::sync::Mutex<std::collections::HashSet<ChannelId>>,
    /// Ports the host listens on for the caller (ssh -R), with how many
    /// forwards (asked or granted) name each.
    pub(crate) forwards: Arc<std::sync::Mutex<std::collections::HashMap<u32, usize>>>,
    /// Channels the host opened back that are still being relayed: the
    /// session ends after their records.
    pub(crate) back_channels: Arc<std::sync::atomic::AtomicUsize>,
}

impl Login {
    /// What the policy is asked about `action` by this login: no command,
    /// terminal, environment, paths or forward (the caller sets those).
    pub(crate) fn facts<'a>(
        &'a self,
        action: &'a str,
        approved: bool,
    ) -> gatehouse_policy::SshRequestFacts<'a> {
        gatehouse_policy::SshRequestFacts {
            identity: self.session.identity(),
            connection: &self.target.name,
            client_ip: self.peer.ip(),
            now: gatehouse_core::Timestamp::now(),
            approved,
            action,
            host: &self.target.host,
            port: self.target.port,
            user: &self.user,
            command: "",
            pty: None,
            env: &[],
            subsystem: "",
            operation: "",
            paths: &[],
            forward: None,
        }
    }

    /// Notes that the host listens on `port` for the caller.
    pub(crate) fn note_forward(&self, port: u32) {
        *self
            .forwards
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(port)
            .or_default() += 1;
    }

    /// Forgets one forward of a port the host listened on (the port stays
    /// forwarded while another names it); `false` when none did.
    pub(crate) fn drop_forward(&self, port: u32) -> bool {
        let mut forwards = self.forwards.lock().unwrap_or_else(|p| p.into_inner());
        match forwards.get_mut(&port) {
            Some(n) if *n > 1 => {
                *n -= 1;
                true
            }
            Some(_) => {
                forwards.remove(&port);
                true
            }
            None => false,
        }
    }

    /// Whether agent forwarding was allowed on the caller's `channel`.
    pub(crate) fn agent_allowed(&self, channel: ChannelId) -> bool {
        self.agent_channels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&channel)
    }

    /// The gateway's connection to the target, made on first use. `Err`
    /// says why it cannot be made (for the caller), every time it is asked.
    pub(crate) async fn upstream(&self) -> Result<Arc<Upstream>, String> {
        self.upstream
            .get_or_init(|| async {
                let bridge = self.caller.get().map(|h| crate::back::Bridge {
                    agent_channels: self.agent.clone(),
                    open_channels: self.open_channels.clone(),
                    forwards: self.forwards.clone(),
                    back_channels: self.back_channels.clone(),
                    policy: self.gw.settings.policy.clone(),
                    caller: h.clone(),
                    session: self.session.clone(),
                    engine: self.target.masking.clone(),
                });
                upstream::connect(self.target.clone(), &self.user, bridge)
                    .await
                    .map(Arc::new)
                    .inspect_err(|e| tracing::warn!(connection = %self.target.name, error = %e, "ssh target unreachable"))
            })
            .await
            .clone()
    }
}

/// The handler of one caller connection.
pub(crate) struct CallerConnection {
    gw: Arc<Gw>,
    peer: SocketAddr,
    /// Set once the caller is in; the listener closes its session.
    pub(crate) login: Arc<std::sync::Mutex<Option<Arc<Login>>>>,
    /// Why the last keyboard-interactive answer was refused: shown once,
    /// then the method fails.
    refused: Option<String>,
    /// The client's version string, for the session's record.
    client: String,
    /// Channels open now.
    open_channels: Arc<std::sync::atomic::AtomicUsize>,
    /// Channels whose shell, command or subsystem was asked for: a second
    /// such request on one channel is refused.
    started: std::collections::HashSet<ChannelId>,
}

impl CallerConnection {
    pub(crate) fn new(
        gw: Arc<Gw>,
        peer: SocketAddr,
        login: Arc<std::sync::Mutex<Option<Arc<Login>>>>,
    ) -> Self {
        Self {
            gw,
            peer,
            login,
            refused: None,
            client: String::new(),
            open_channels: Arc::default(),
            started: std::collections::HashSet::new(),
        }
    }

    /// A slot for one more channel, or `None` when the connection has
    /// [`MAX_CHANNELS`] open.
    fn channel_slot(&self) -> Option<ChannelSlot> {
        channel_slot(&self.open_channels)
    }

    /// Answers a shell, exec or subsystem request: the first on a channel
    /// goes to its task, which decides it; a second is refused.
    fn start(
        &mut self,
        channel: ChannelId,
        session: &mut server::Session,
    ) -> Result<(), russh::Error> {
        if self.started.insert(channel) {
            session.channel_success(channel)
        } else {
            session.channel_failure(channel)
        }
    }

    fn logged_in(&self) -> Option<Arc<Login>> {
        self.login.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The connection and account an SSH user name asks for: a configured
    /// connection's name, or `account@connection`.
    fn resolve(&self, name: &str) -> (String, Option<String>) {
        if self.gw.settings.connections.contains_key(name) {
            return (name.to_string(), None);
        }
        match name.split_once('@') {
            Some((account, connection)) => (connection.to_string(), Some(account.to_string())),
            None => (name.to_string(), None),
        }
    }

    /// Logs the caller in with `credential` (`how` names the method for
    /// the login's event): the core's login sequence, the account checked
    /// against the connection's, the session opened. `Err` is what the
    /// caller is told; `None` for a key registered to no one (not an event:
    /// the client offers its keys in turn).
    async fn log_in(
        &mut self,
        name: &str,
        credential: Credential<'_>,
        how: String,
    ) -> Result<(), Option<String>> {
        let (connection, account) = self.resolve(name);
        let target = self.gw.settings.connections.get(&connection).cloned();
        let attempt = LoginAttempt {
            protocol: Protocol::Ssh,
            peer: self.peer,
            encrypted: true,
            connection: Some(&connection),
            kind: target.as_ref().map(|_| "ssh"),
        };
        let gate = &self.gw.gatekeeper;
        let knock = gate.knock(attempt).await.map_err(|r| words(&r))?;
        let checked = gate
            .login(&knock, credential)
            .await
            .map_err(|r| words(&r))?
            .with_settings(vec![("ssh_auth".into(), how)]);
        // Only a configured connection passes the login.
        let Some(target) = target else {
            return Err(Some(format!("connection {connection:?} is not configured")));
        };
        let user = account.unwrap_or_else(|| target.user.clone());
        if !target.users.contains(&user) {
            let message = format!(
                "the connection {} does not let callers log in to the account {user:?} (its accounts: {})",
                target.name,
                target.users.join(", ")
            );
            return Err(words(&checked.refuse("account", message).await));
        }
        let admitted = checked.admit().await.map_err(|r| words(&r))?;
        let session = admitted
            .open(SessionDetails {
                client_user: name.to_string(),
                application_name: Some(self.client.clone()).filter(|c| !c.is_empty()),
            })
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "could not open an ssh session");
                Some(
                    "gatehouse could not record the session's start, so it was not opened"
                        .to_string(),
                )
            })?;
        *self.login.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(Login {
            gw: self.gw.clone(),
            peer: self.peer,
            session,
            target,
            user,
            upstream: OnceCell::new(),
            caller: std::sync::OnceLock::new(),
            agent: Arc::default(),
            open_channels: self.open_channels.clone(),
            agent_channels: std::sync::Mutex::default(),
            forwards: Arc::default(),
            back_channels: Arc::default(),
        }));
        Ok(())
    }
}

fn too_many_channels() -> ChannelOpenFailure {
    ChannelOpenFailure::Other {
        code: 4, // SSH_OPEN_RESOURCE_SHORTAGE
        reason: format!(
            "gatehouse: {MAX_CHANNELS} channels are open on this connection, the most one may have"
        ),
    }
}

/// A refused login in words for the caller (`None`: an unknown key, which
/// is not told).
fn words(r: &LoginRefusal) -> Option<String> {
    match r {
        LoginRefusal::UnknownKey => None,
        LoginRefusal::BadCredential { .. } | LoginRefusal::MissingCredential => Some(format!(
            "{}; use a service token or an OIDC token as the password",
            r.message()
        )),
        _ => Some(r.message()),
    }
}

fn methods() -> MethodSet {
    MethodSet::from(
        &[
            MethodKind::PublicKey,
            MethodKind::KeyboardInteractive,
            MethodKind::Password,
        ][..],
    )
}

fn rejected() -> Auth {
    Auth::Reject {
        proceed_with_methods: Some(methods()),
        partial_success: false,
    }
}

impl server::Handler for CallerConnection {
    type Error = russh::Error;

    async fn auth_none(&mut self, _user: &str) -> Result<Auth, Self::Error> {
        Ok(rejected())
    }

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        let credential = Credential::Token(password);
        match self.log_in(user, credential, "password".into()).await {
            Ok(()) => Ok(Auth::Accept),
            Err(why) => {
                tracing::info!(client = %self.peer, reason = ?why, "ssh login refused");
                Ok(rejected())
            }
        }
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: server::VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        let Ok(blob) = key.public_key.to_bytes() else {
            return Ok(rejected());
        };
        let how = format!("key {}", crate::fingerprint(key.public_key));
        match self.log_in(user, Credential::SshKey(&blob), how).await {
            Ok(()) => Ok(Auth::Accept),
            Err(why) => {
                if let Some(why) = why {
                    tracing::info!(client = %self.peer, reason = %why, "ssh login refused");
                }
                Ok(rejected())
            }
        }
    }

    async fn auth_openssh_certificate(
        &mut self,
        user: &str,
        certificate: &russh::keys::Certificate,
    ) -> Result<Auth, Self::Error> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let how = format!("certificate serial {}", certificate.serial());
        let identity = match self.gw.settings.ca.verify(certificate, now) {
            Ok(identity) => identity,
            Err(why) => {
                let (connection, _) = self.resolve(user);
                let kind = self.gw.settings.connections.get(&connection).map(|_| "ssh");
                let attempt = LoginAttempt {
                    protocol: Protocol::Ssh,
                    peer: self.peer,
                    encrypted: true,
                    connection: Some(&connection),
                    kind,
                };
                tracing::info!(client = %self.peer, reason = %why, "ssh certificate refused");
                self.gw
                    .gatekeeper
                    .log_refusal(&attempt, "credential", &why)
                    .await;
                return Ok(rejected());
            }
        };
        match self
            .log_in(user, Credential::Certified(identity), how)
            .await
        {
            Ok(()) => Ok(Auth::Accept),
            Err(why) => {
                tracing::info!(client = %self.peer, reason = ?why, "ssh login refused");
                Ok(rejected())
            }
        }
    }

    async fn auth_keyboard_interactive<'a>(
        &'a mut self,
        user: &str,
        _submethods: &str,
        response: Option<Response<'a>>,
    ) -> Result<Auth, Self::Error> {
        let reject = rejected();
        let Some(mut response) = response else {
            // A new round: whatever was refused before is behind us.
            self.refused = None;
            return Ok(Auth::Partial {
                name: Cow::Borrowed(""),
                instructions: Cow::Borrowed(""),
                prompts: Cow::Owned(vec![(Cow::Borrowed(PROMPT), false)]),
            });
        };
        if self.refused.take().is_some() {
            // The answer to the note that said why: the method fails now.
            return Ok(reject);
        }
        let token = response
            .next()
            .map(|b| String::from_utf8_lossy(&b).trim().to_string())
            .unwrap_or_default();
        let credential = Credential::Token(&token);
        match self
            .log_in(user, credential, "keyboard-interactive".into())
            .await
        {
            Ok(()) => Ok(Auth::Accept),
            Err(why) => {
                let why = why.unwrap_or_default();
                tracing::info!(client = %self.peer, reason = %why, "ssh login refused");
                // The caller is told why in an instruction without prompts.
                let note = format!("gatehouse: {why}");
                self.refused = Some(note.clone());
                Ok(Auth::Partial {
                    name: Cow::Borrowed("gatehouse"),
                    instructions: Cow::Owned(note),
                    prompts: Cow::Owned(Vec::new()),
                })
            }
        }
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        session: &mut server::Session,
    ) -> Result<(), Self::Error> {
        let Some(login) = self.logged_in() else {
            reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        };
        let Some(slot) = self.channel_slot() else {
            reply.reject(too_many_channels()).await;
            return Ok(());
        };
        reply.accept().await;
        let handle = session.handle();
        let _ = login.caller.set(handle.clone());
        tokio::spawn(async move {
            crate::channel::run(login, channel, handle).await;
            drop(slot);
        });
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host_to_connect: &str,
        port_to_connect: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        session: &mut server::Session,
    ) -> Result<(), Self::Error> {
        let Some(login) = self.logged_in() else {
            reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        };
        let Some(slot) = self.channel_slot() else {
            reply.reject(too_many_channels()).await;
            return Ok(());
        };
        let host = host_to_connect.to_string();
        let handle = session.handle();
        let _ = login.caller.set(handle.clone());
        tokio::spawn(async move {
            crate::forward::run(login, channel, reply, host, port_to_connect, handle).await;
            drop(slot);
        });
        Ok(())
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut server::Session,
    ) -> Result<(), Self::Error> {
        self.started.remove(&channel);
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut server::Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        _variable_name: &str,
        _variable_value: &str,
        session: &mut server::Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut server::Session,
    ) -> Result<(), Self::Error> {
        // Accepted here; decided by the channel's task, which tells the
        // caller on stderr and ends the channel if it is refused.
        self.start(channel, session)
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        _data: &[u8],
        session: &mut server::Session,
    ) -> Result<(), Self::Error> {
        self.start(channel, session)
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        _name: &str,
        session: &mut server::Session,
    ) -> Result<(), Self::Error> {
        self.start(channel, session)
    }

    async fn x11_request(
        &mut self,
        channel: ChannelId,
        _single_connection: bool,
        _x11_auth_protocol: &str,
        _x11_auth_cookie: &str,
        _x11_screen_number: u32,
        session: &mut server::Session,
    ) -> Result<(), Self::Error> {
        tracing::info!(client = %self.peer, "ssh: X11 forwarding refused");
        session.channel_failure(channel)
    }

    async fn agent_request(
        &mut self,
        channel: ChannelId,
        session: &mut server::Session,
    ) -> Result<bool, Self::Error> {
        let Some(login) = self.logged_in() else {
            return Ok(false);
        };
        let _ = login.caller.set(session.handle());
        // Decided (and recorded) now, answered in order with the other
        // requests; the host is asked (and may open agent connections)
        // only once this channel's own action is allowed and runs.
        let allowed = crate::agent::decide(&login).await;
        if allowed {
            login
                .agent_channels
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(channel);
        } else {
            tracing::info!(client = %self.peer, "ssh: agent forwarding refused");
        }
        Ok(allowed)
    }

    async fn tcpip_forward(
        &mut self,
        address: &str,
        port: &mut u32,
        session: &mut server::Session,
    ) -> Result<bool, Self::Error> {
        let Some(login) = self.logged_in() else {
            return Ok(false);
        };
        let _ = login.caller.set(session.handle());
        // Decided, recorded and asked of the host now, answered in order.
        Ok(crate::remote::request(&login, address, port).await)
    }

    async fn cancel_tcpip_forward(
        &mut self,
        address: &str,
        port: u32,
        _session: &mut server::Session,
    ) -> Result<bool, Self::Error> {
        let Some(login) = self.logged_in() else {
            return Ok(false);
        };
        Ok(crate::remote::cancel(&login, address, port).await)
    }
}
