//! Agent forwarding (`ssh -A`), only where a policy allows
//! `ssh:agent-forward` by name. The request is decided and recorded when
//! the caller makes it; the channel that asked then asks the host for it
//! too; each agent connection the host opens back is bridged to a new
//! agent channel to the caller, relayed as bytes and recorded with its
//! byte counts. Without the permission the request is refused (and
//! recorded), and any agent channel the host opens is refused.

use crate::caller::Login;
use crate::channel::{finish, write_ahead};
use crate::relay::{self, CallerSide, Carries, Plan, TargetSide};
use gatehouse_core::{ActionOutcome, Decided, DecisionRecord, StreamRecord, Timestamp};
use gatehouse_mask::MaskingEngine;
use gatehouse_policy::{Decision, SshRequestFacts};
use gatehouse_session::Session;
use russh::client::ChannelOpenHandle;
use russh::{Channel, ChannelOpenFailure};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// How long a channel the host opens back waits for the caller to take it.
pub(crate) const OPEN_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// What the gateway's connection to the host needs to bridge connections
/// the host opens back (agent connections, remote forwards) to the caller.
#[derive(Clone)]
pub(crate) struct Bridge {
    /// Open channels of this caller connection with agent forwarding on.
    pub(crate) agent_channels: Arc<AtomicUsize>,
    /// Open channels of the caller connection, against its limit.
    pub(crate) open_channels: Arc<AtomicUsize>,
    /// Ports the gateway asked the host to listen on for the caller.
    pub(crate) forwards: Arc<std::sync::Mutex<std::collections::HashSet<u32>>>,
    pub(crate) caller: russh::server::Handle,
    pub(crate) session: Session,
    pub(crate) engine: Arc<MaskingEngine>,
}

impl Bridge {
    /// Whether the gateway asked the host to listen on `port`.
    pub(crate) fn forwarded(&self, port: u32) -> bool {
        self.forwards
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&port)
    }
}

/// Decides a caller's agent-forwarding request on its channel, recording
/// the decision; `true` when it is allowed. A request that needs approval
/// is refused (an agent request cannot wait).
pub(crate) async fn decide(login: &Login) -> bool {
    let session = &login.session;
    let target = &login.target;
    let policy = login.gw.settings.policy.clone();
    let (engine, _) = policy.current();
    let d = engine.decide_ssh(&SshRequestFacts {
        identity: session.identity(),
        connection: &target.name,
        client_ip: login.peer.ip(),
        now: Timestamp::now(),
        approved: false,
        action: "ssh:agent-forward",
        host: &target.host,
        port: target.port,
        user: &login.user,
        command: "",
        pty: None,
        env: &[],
        subsystem: "",
        operation: "",
        paths: &[],
        forward: None,
    });
    let mode = policy.mode();
    let allowed =
        matches!(d, Decision::Allow { .. }) || mode == gatehouse_policy::PolicyMode::Audit;
    let mut record =
        gatehouse_session::gate::record(&d, mode, mode == gatehouse_policy::PolicyMode::Audit);
    if !allowed {
        // Approval is not waited for here: the request is refused.
        record.decision = Decided::Deny;
    }
    let seq = session.next_seq();
    let text = "(agent forwarding)".to_string();
    let started = Timestamp::now();
    let clock = std::time::Instant::now();
    if write_ahead(session, seq, &text, 0, &record, None)
        .await
        .is_err()
    {
        return false;
    }
    let outcome = if allowed {
        ActionOutcome::Ok {
            summary: "allowed".into(),
            count: None,
        }
    } else {
        ActionOutcome::Error {
            code: "refused".into(),
            message: record.reason.clone().unwrap_or_default(),
        }
    };
    finish(
        session,
        seq,
        text,
        Vec::new(),
        started,
        clock,
        outcome,
        record,
        None,
    )
    .await;
    allowed
}

/// The host opened an agent connection: bridged to the caller when the
/// session allowed agent forwarding, refused otherwise.
pub(crate) async fn host_opened(
    bridge: Option<Bridge>,
    channel: Channel<russh::client::Msg>,
    reply: ChannelOpenHandle,
) {
    let Some(bridge) = bridge.filter(|b| b.agent_channels.load(Ordering::Acquire) > 0) else {
        tracing::warn!("ssh: the host opened an agent channel no open channel asked for; refused");
        reply
            .reject(ChannelOpenFailure::AdministrativelyProhibited)
            .await;
        return;
    };
    let Some(slot) = crate::caller::channel_slot(&bridge.open_channels) else {
        reply.reject(ChannelOpenFailure::ResourceShortage).await;
        return;
    };
    tokio::spawn(async move {
        let _slot = slot;
        let session = &bridge.session;
        let seq = session.next_seq();
        let text = "(agent connection)".to_string();
        let record = DecisionRecord {
            decision: Decided::Allow,
            policies: Vec::new(),
            mode: gatehouse_core::DecidedIn::Enforce,
            reason: Some("the session's agent forwarding was allowed".into()),
        };
        let started = Timestamp::now();
        let clock = std::time::Instant::now();
        // Written ahead before anything of it is relayed.
        if write_ahead(session, seq, &text, 0, &record, None)
            .await
            .is_err()
        {
            reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return;
        }
        // A caller that has gone never answers: not waited for long.
        let opening = bridge.caller.channel_open_agent();
        let opened = tokio::time::timeout(OPEN_WAIT, opening)
            .await
            .unwrap_or(Err(russh::Error::SendError));
        let caller = match opened {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "ssh: the caller's agent did not open");
                reply.reject(ChannelOpenFailure::ConnectFailed).await;
                let outcome = ActionOutcome::Error {
                    code: "unreachable".into(),
                    message: "the caller's agent did not open".into(),
                };
                finish(
                    session,
                    seq,
                    text,
                    Vec::new(),
                    started,
                    clock,
                    outcome,
                    record,
                    None,
                )
                .await;
                return;
            }
        };
        reply.accept().await;
        let session = &bridge.session;
        let seq = session.next_seq();
        let text = "(agent connection)".to_string();
        let record = DecisionRecord {
            decision: Decided::Allow,
            policies: Vec::new(),
            mode: gatehouse_core::DecidedIn::Enforce,
            reason: Some("the session's agent forwarding was allowed".into()),
        };
        let started = Timestamp::now();
        let clock = std::time::Instant::now();
        if write_ahead(session, seq, &text, 0, &record, None)
            .await
            .is_err()
        {
            return;
        }
        let (read, write) = caller.split();
        let (up_read, up_write) = channel.split();
        let relayed = relay::relay(
            session,
            CallerSide {
                read,
                write,
                handle: bridge.caller.clone(),
            },
            TargetSide {
                read: up_read,
                write: up_write,
            },
            Plan {
                carries: Carries::Bytes,
                engine: bridge.engine.clone(),
                recording: None,
                early: Vec::new(),
                sftp: None,
            },
        )
        .await;
        let stream = StreamRecord {
            protocol: "ssh-agent".into(),
            stdin_bytes: relayed.bytes[0],
            stdout_bytes: relayed.bytes[1],
            ..StreamRecord::default()
        };
        let outcome = ActionOutcome::Ok {
            summary: format!(
                "agent: {} bytes from the caller's agent, {} to it",
                relayed.bytes[0], relayed.bytes[1]
            ),
            count: None,
        };
        finish(
            session,
            seq,
            text,
            Vec::new(),
            started,
            clock,
            outcome,
            record,
            Some(stream),
        )
        .await;
    });
}

/// Counts a channel with agent forwarding on while it is open.
pub(crate) struct AgentChannel(Arc<AtomicUsize>);

impl AgentChannel {
    /// Counts one more (the host was asked for agent forwarding on it).
    pub(crate) fn open(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        Self(count.clone())
    }
}

impl Drop for AgentChannel {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
