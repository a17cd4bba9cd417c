//! One forwarded connection (`ssh -L`): `ssh:port-forward` decided with
//! its destination before it is opened from the target, then relayed as
//! bytes and recorded as an action with its byte counts. An approval
//! cannot be waited for inside a forwarded connection: one that needs it
//! is refused, naming its request, and opens once approved.

use crate::caller::Login;
use crate::relay;
use gatehouse_core::statement_fingerprint;
use gatehouse_policy::{Decision, SshRequestFacts};
use gatehouse_session::gate::{self, ApprovalAsk, Verdict};
use gatehouse_session::recording::mask_for_record;
use gatehouse_session::{Action, Finished};
use russh::server::{ChannelOpenHandle, Msg};
use russh::{Channel, ChannelOpenFailure};
use std::sync::Arc;

/// SSH's reason code for a prohibited channel (RFC 4254 §5.1).
const PROHIBITED: u32 = 1;
/// Its reason code for a connection that failed.
const CONNECT_FAILED: u32 = 2;

/// Decides, opens and relays one forwarded connection.
pub(crate) async fn run(
    login: Arc<Login>,
    chan: Channel<Msg>,
    reply: ChannelOpenHandle,
    host: String,
    port: u32,
    handle: russh::server::Handle,
) {
    let session = &login.session;
    let engine = login.target.masking.clone();
    let mask = {
        let engine = engine.clone();
        move |t: &str| mask_for_record(&engine, t)
    };
    let what = format!("(forward {host}:{port})");
    let Ok(port16) = u16::try_from(port) else {
        let why = format!("port {port} is not a TCP port");
        crate::channel::refuse_unread(&login, &what, &why).await;
        reply
            .reject(ChannelOpenFailure::Other {
                code: PROHIBITED,
                reason: format!("gatehouse: {why}"),
            })
            .await;
        return;
    };
    let policy = login.gw.settings.policy.clone();
    let decide_as = |approved: bool| -> Decision {
        let (engine, _) = policy.current();
        engine.decide_ssh(&SshRequestFacts {
            forward: Some((&host, port16)),
            ..login.facts("ssh:port-forward", approved)
        })
    };
    let fingerprint = statement_fingerprint(
        &session.identity().subject,
        &login.target.name,
        "ssh",
        &format!("ssh:port-forward {host}:{port}"),
        &[Some(login.user.as_bytes())],
    );
    let action = Action::begin(
        session,
        "ssh",
        mask(&what),
        vec![Some(format!("account={}", login.user))],
    );
    let ask = ApprovalAsk {
        seq: action.seq(),
        text: action.text(),
        params: action.params(),
        fingerprint: &fingerprint,
        mask: &mask,
    };
    let verdict = match gate::decide(session, policy.mode(), &decide_as, &ask).await {
        // A forwarded connection cannot wait: the request stays filed, and
        // the connection opens once it is approved.
        Verdict::Held(held) => held.refuse(),
        v => v,
    };
    let (mut record, approval) = match verdict {
        Verdict::Forward { record, approval } => (record, approval),
        Verdict::Refuse {
            mut record,
            refusal,
        } => {
            record.reason = record.reason.map(|r| mask(&r));
            let message = mask(&refusal.message());
            let logged = action.write_ahead(session, &record, None).await;
            reply
                .reject(ChannelOpenFailure::Other {
                    code: PROHIBITED,
                    reason: format!("gatehouse: {message}"),
                })
                .await;
            if logged.is_ok() {
                action.failed(session, "refused", message, record).await;
            }
            return;
        }
        Verdict::Held(_) => unreachable!("a held forward was turned into a refusal above"),
    };
    record.reason = record.reason.map(|r| mask(&r));
    if action
        .write_ahead(session, &record, approval)
        .await
        .is_err()
    {
        reply
            .reject(ChannelOpenFailure::Other {
                code: PROHIBITED,
                reason:
                    "gatehouse could not write its evidence log, so the connection was not opened"
                        .into(),
            })
            .await;
        return;
    }
    let opened = match login.upstream().await {
        Ok(up) => up
            .channel_open_direct_tcpip(host.clone(), port, "127.0.0.1", 0)
            .await
            .map_err(|e| format!("the host could not open {host}:{port}: {e}")),
        Err(why) => Err(why),
    };
    let up = match opened {
        Ok(c) => c,
        Err(why) => {
            reply
                .reject(ChannelOpenFailure::Other {
                    code: CONNECT_FAILED,
                    reason: format!("gatehouse: {why}"),
                })
                .await;
            action.failed(session, "unreachable", why, record).await;
            return;
        }
    };
    reply.accept().await;
    let relayed = relay::relay_bytes(session, chan, up, handle, engine).await;
    let (outcome, stream) = relayed.bytes_record("ssh-forward", Some(format!("{host}:{port}")));
    action
        .finish(session, outcome, record, Finished::stream(stream))
        .await;
}
