//! Channels the host opens back towards the caller (an agent connection,
//! a connection to a forwarded port), where the session allowed them:
//! counted against the connection's channel limit, written ahead, opened
//! to the caller (not waited for long: a caller that has gone never
//! answers), relayed as bytes and recorded with their byte counts.

use crate::relay;
use gatehouse_core::{Decided, DecisionRecord};
use gatehouse_mask::MaskingEngine;
use gatehouse_session::Session;
use gatehouse_session::{Action, Finished};
use russh::client::ChannelOpenHandle;
use russh::{Channel, ChannelOpenFailure};
use std::future::Future;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a channel the host opens back waits for the caller to take it.
const OPEN_WAIT: Duration = Duration::from_secs(10);

/// What the gateway's connection to the host needs to bring channels back
/// to the caller.
#[derive(Clone)]
pub(crate) struct Bridge {
    /// Open channels of this caller connection with agent forwarding on.
    pub(crate) agent_channels: Arc<AtomicUsize>,
    /// Open channels of the caller connection, against its limit.
    pub(crate) open_channels: Arc<AtomicUsize>,
    /// Ports the gateway asked the host to listen on for the caller.
    pub(crate) forwards: Arc<Mutex<std::collections::HashMap<u32, usize>>>,
    /// Channels brought back and still relayed (the session waits for them).
    pub(crate) back_channels: Arc<AtomicUsize>,
    /// The policy (its mode is what the records say).
    pub(crate) policy: Arc<gatehouse_policy::PolicyHandle>,
    pub(crate) caller: russh::server::Handle,
    pub(crate) session: Session,
    pub(crate) engine: Arc<MaskingEngine>,
}

/// One channel coming back: what it is recorded as.
pub(crate) struct Back {
    /// The action's text (`(agent connection)`).
    pub(crate) text: String,
    /// Why it was let through.
    pub(crate) reason: String,
    /// The stream's protocol in the record (`ssh-agent`).
    pub(crate) protocol: &'static str,
    /// For a forwarded port: its `address:port`.
    pub(crate) forwarded: Option<String>,
}

impl Bridge {
    /// Whether the gateway asked the host to listen on `port`.
    pub(crate) fn forwarded(&self, port: u32) -> bool {
        self.forwards
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&port)
    }

    /// Brings the host's `channel` back to the caller through the channel
    /// `open` opens there, in a task of its own.
    pub(crate) fn carry<F>(
        self,
        channel: Channel<russh::client::Msg>,
        reply: ChannelOpenHandle,
        back: Back,
        open: F,
    ) where
        F: Future<Output = Result<Channel<russh::server::Msg>, russh::Error>> + Send + 'static,
    {
        let Some(slot) = crate::caller::channel_slot(&self.open_channels) else {
            tokio::spawn(reply.reject(ChannelOpenFailure::ResourceShortage));
            return;
        };
        let running = Running::start(&self.back_channels);
        tokio::spawn(async move {
            let _slot = slot;
            let _running = running;
            let session = &self.session;
            let record = DecisionRecord {
                decision: Decided::Allow,
                policies: Vec::new(),
                mode: self.policy.mode().recorded(),
                reason: Some(back.reason),
            };
            let action = Action::begin(session, "ssh", back.text, Vec::new());
            // Written ahead before anything of it is relayed.
            if action.write_ahead(session, &record, None).await.is_err() {
                reply
                    .reject(ChannelOpenFailure::AdministrativelyProhibited)
                    .await;
                return;
            }
            let opened = tokio::time::timeout(OPEN_WAIT, open)
                .await
                .unwrap_or(Err(russh::Error::SendError));
            let caller = match opened {
                Ok(c) => c,
                Err(e) => {
                    tracing::debug!(error = %e, "ssh: the caller did not take a channel the host opened");
                    reply.reject(ChannelOpenFailure::ConnectFailed).await;
                    let why = "the caller did not take the channel".to_string();
                    action.failed(session, "unreachable", why, record).await;
                    return;
                }
            };
            reply.accept().await;
            let relayed = relay::relay_bytes(
                session,
                caller,
                channel,
                self.caller.clone(),
                self.engine.clone(),
            )
            .await;
            let (outcome, stream) = relayed.bytes_record(back.protocol, back.forwarded);
            action
                .finish(session, outcome, record, Finished::stream(stream))
                .await;
        });
    }
}

/// Counts a channel brought back while it is relayed.
struct Running(Arc<AtomicUsize>);

impl Running {
    fn start(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Self(count.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}
