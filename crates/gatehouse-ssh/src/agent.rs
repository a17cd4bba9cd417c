//! Agent forwarding (`ssh -A`), only where a policy allows
//! `ssh:agent-forward` by name. The request is decided and recorded when
//! the caller makes it; the channel that asked then asks the host for it
//! too; each agent connection the host opens back is bridged to a new
//! agent channel to the caller, relayed as bytes and recorded with its
//! byte counts. Without the permission the request is refused (and
//! recorded), and any agent channel the host opens is refused.

use crate::back::{Back, Bridge};
use crate::caller::Login;
use gatehouse_core::{ActionOutcome, Decided};
use gatehouse_policy::{Decision, SshRequestFacts};
use gatehouse_session::{Action, Finished};
use russh::client::ChannelOpenHandle;
use russh::{Channel, ChannelOpenFailure};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Decides an action only a permit that names it allows (agent and remote
/// forwarding): whether it goes ahead (audit mode lets it), and the
/// decision as recorded. One that needs approval is refused: these
/// requests cannot wait.
pub(crate) fn decide_named(
    login: &Login,
    action: &str,
    forward: Option<(&str, u16)>,
) -> (bool, gatehouse_core::DecisionRecord) {
    let policy = login.gw.settings.policy.clone();
    let (engine, _) = policy.current();
    let d = engine.decide_ssh(&SshRequestFacts {
        forward,
        ..login.facts(action, false)
    });
    let mode = policy.mode();
    let audit = mode == gatehouse_policy::PolicyMode::Audit;
    let allowed = matches!(d, Decision::Allow { .. }) || audit;
    let mut record = gatehouse_session::gate::record(&d, mode, audit);
    if !allowed {
        record.decision = Decided::Deny;
    }
    (allowed, record)
}

/// Decides a caller's agent-forwarding request on its channel, recording
/// the decision; `true` when it is allowed. A request that needs approval
/// is refused (an agent request cannot wait).
pub(crate) async fn decide(login: &Login) -> bool {
    let session = &login.session;
    let (allowed, record) = decide_named(login, "ssh:agent-forward", None);
    let action = Action::begin(session, "ssh", "(agent forwarding)".into(), Vec::new());
    if action.write_ahead(session, &record, None).await.is_err() {
        return false;
    }
    if allowed {
        let outcome = ActionOutcome::Ok {
            summary: "allowed".into(),
            count: None,
        };
        action
            .finish(session, outcome, record, Finished::default())
            .await;
    } else {
        let why = record.reason.clone().unwrap_or_default();
        action.failed(session, "refused", why, record).await;
    }
    allowed
}

/// The host opened an agent connection: brought back to the caller's
/// agent while a channel with agent forwarding on is open, refused
/// otherwise.
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
    let caller = bridge.caller.clone();
    let back = Back {
        text: "(agent connection)".into(),
        reason: "the session's agent forwarding was allowed".into(),
        protocol: "ssh-agent",
        forwarded: None,
    };
    bridge.carry(channel, reply, back, async move {
        caller.channel_open_agent().await
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
