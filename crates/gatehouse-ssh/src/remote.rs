//! Remote forwarding (`ssh -R`), only where a policy allows
//! `ssh:remote-forward` by name: the request to listen on the host is
//! decided (with the address and port asked for) and recorded; the gateway
//! then asks the host itself, and each connection the host accepts there
//! is bridged to a new forwarded channel to the caller, relayed as bytes
//! and recorded with its byte counts. A connection for a port the gateway
//! did not ask for is refused.

use crate::back::{Back, Bridge};
use crate::caller::Login;
use gatehouse_core::ActionOutcome;
use gatehouse_session::recording::mask_for_record;
use gatehouse_session::{Action, Finished};
use russh::client::ChannelOpenHandle;
use russh::{Channel, ChannelOpenFailure};

/// Decides a caller's request to listen on the host at `address:port`,
/// asks the host when it is allowed (setting `port` to the one bound when
/// it asked for any), and records it. `true` when the host listens.
pub(crate) async fn request(login: &Login, address: &str, port: &mut u32) -> bool {
    let session = &login.session;
    let target = &login.target;
    let what = format!("(remote forward {address}:{port})");
    let Ok(asked) = u16::try_from(*port) else {
        let why = format!("port {port} is not a TCP port");
        crate::channel::refuse_unread(login, &what, &why).await;
        return false;
    };
    let (allowed, record) =
        crate::agent::decide_named(login, "ssh:remote-forward", Some((address, asked)));
    let text = mask_for_record(&target.masking, &what);
    let action = Action::begin(session, "ssh", text, Vec::new());
    if action.write_ahead(session, &record, None).await.is_err() {
        return false;
    }
    if !allowed {
        let why = record.reason.clone().unwrap_or_default();
        action.failed(session, "refused", why, record).await;
        return false;
    }
    // Noted before the host is asked: it listens before it answers, and a
    // connection may come in between (a port it picks is noted after).
    if *port != 0 {
        login.note_forward(*port);
    }
    // The caller's connection waits for this answer (requests are answered
    // in order): the host gets its connect_timeout, then it is refused.
    let limit = target.connect_timeout;
    let asking = async {
        match login.upstream().await {
            Ok(up) => up
                .tcpip_forward(address, *port)
                .await
                .map_err(|e| format!("the host did not listen on {address}:{port}: {e}")),
            Err(why) => Err(why),
        }
    };
    let bound = tokio::time::timeout(limit, asking)
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "the host did not answer within {}s",
                limit.as_secs()
            ))
        });
    match bound {
        Ok(bound) => {
            if *port == 0 {
                *port = bound;
                login.note_forward(bound);
            }
            let outcome = ActionOutcome::Ok {
                summary: format!("listening on {address}:{port}"),
                count: None,
            };
            action
                .finish(session, outcome, record, Finished::default())
                .await;
            true
        }
        Err(why) => {
            if asked != 0 {
                login.drop_forward(u32::from(asked));
            }
            action.failed(session, "refused", why, record).await;
            false
        }
    }
}

/// Stops listening on the host at `address:port`.
pub(crate) async fn cancel(login: &Login, address: &str, port: u32) -> bool {
    if !login.drop_forward(port) {
        return false;
    }
    let asking = async {
        match login.upstream().await {
            Ok(up) => up.cancel_tcpip_forward(address, port).await.is_ok(),
            Err(_) => false,
        }
    };
    tokio::time::timeout(login.target.connect_timeout, asking)
        .await
        .unwrap_or(false)
}

/// The host accepted a connection on a forwarded port: brought back to
/// the caller when the gateway asked for that port, refused otherwise.
pub(crate) async fn host_opened(
    bridge: Option<Bridge>,
    channel: Channel<russh::client::Msg>,
    connected: (String, u32),
    originator: (String, u32),
    reply: ChannelOpenHandle,
) {
    let Some(bridge) = bridge.filter(|b| b.forwarded(connected.1)) else {
        tracing::warn!(
            port = connected.1,
            "ssh: the host opened a forwarded connection the gateway did not ask for; refused"
        );
        reply
            .reject(ChannelOpenFailure::AdministrativelyProhibited)
            .await;
        return;
    };
    let back = Back {
        text: format!(
            "(remote forward connection to {}:{} from {}:{})",
            connected.0, connected.1, originator.0, originator.1
        ),
        reason: format!(
            "the session's remote forward of port {} was allowed",
            connected.1
        ),
        protocol: "ssh-remote-forward",
        forwarded: Some(format!("{}:{}", connected.0, connected.1)),
    };
    let caller = bridge.caller.clone();
    bridge.carry(channel, reply, back, async move {
        caller
            .channel_open_forwarded_tcpip(connected.0, connected.1, originator.0, originator.1)
            .await
    });
}
