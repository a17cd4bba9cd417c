//! One forwarded connection (`ssh -L`): `ssh:port-forward` decided with
//! its destination before it is opened from the target, then relayed as
//! bytes and recorded as an action with its byte counts. An approval
//! cannot be waited for inside a forwarded connection: one that needs it
//! is refused, naming its request, and opens once approved.

use crate::caller::Login;
use crate::channel::{finish, write_ahead};
use crate::relay;
use gatehouse_core::{statement_fingerprint, ActionOutcome, StreamRecord, Timestamp};
use gatehouse_policy::{Decision, SshRequestFacts};
use gatehouse_session::gate::{self, ApprovalAsk, Verdict};
use gatehouse_session::recording::mask_for_record;
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
    let seq = session.next_seq();
    let engine = login.target.masking.clone();
    let mask = {
        let engine = engine.clone();
        move |t: &str| mask_for_record(&engine, t)
    };
    let text = mask(&format!("(forward {host}:{port})"));
    let params = vec![Some(format!("account={}", login.user))];
    let started = Timestamp::now();
    let clock = std::time::Instant::now();
    let Ok(port16) = u16::try_from(port) else {
        let why = format!("port {port} is not a TCP port");
        crate::channel::refuse_unread(&login, &text, &why).await;
        reply
            .reject(ChannelOpenFailure::Other {
                code: PROHIBITED,
                reason: format!("gatehouse: port {port} is not a TCP port"),
            })
            .await;
        return;
    };
    let identity = session.identity().clone();
    let policy = login.gw.settings.policy.clone();
    let target = login.target.clone();
    let decide_as = |approved: bool| -> Decision {
        let (engine, _) = policy.current();
        engine.decide_ssh(&SshRequestFacts {
            identity: &identity,
            connection: &target.name,
            client_ip: login.peer.ip(),
            now: Timestamp::now(),
            approved,
            action: "ssh:port-forward",
            host: &target.host,
            port: target.port,
            user: &login.user,
            command: "",
            pty: None,
            env: &[],
            subsystem: "",
            operation: "",
            paths: &[],
            forward: Some((&host, port16)),
        })
    };
    let fingerprint = statement_fingerprint(
        &identity.subject,
        &target.name,
        "ssh",
        &format!("ssh:port-forward {host}:{port}"),
        &[Some(login.user.as_bytes())],
    );
    let ask = ApprovalAsk {
        seq,
        text: &text,
        params: &params,
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
            let logged = write_ahead(&login.session, seq, &text, params.len(), &record, None).await;
            reply
                .reject(ChannelOpenFailure::Other {
                    code: PROHIBITED,
                    reason: format!("gatehouse: {message}"),
                })
                .await;
            if logged.is_ok() {
                let outcome = ActionOutcome::Error {
                    code: "refused".into(),
                    message,
                };
                finish(
                    &login.session,
                    seq,
                    text,
                    params,
                    started,
                    clock,
                    outcome,
                    record,
                    None,
                )
                .await;
            }
            return;
        }
        Verdict::Held(_) => unreachable!("a held forward was turned into a refusal above"),
    };
    record.reason = record.reason.map(|r| mask(&r));
    if write_ahead(&login.session, seq, &text, params.len(), &record, approval)
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
            let outcome = ActionOutcome::Error {
                code: "unreachable".into(),
                message: why,
            };
            finish(
                &login.session,
                seq,
                text,
                params,
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
    let relayed = relay::relay_bytes(session, chan, up, handle, engine).await;
    let stream = StreamRecord {
        protocol: "ssh-forward".into(),
        stdin_bytes: relayed.bytes[0],
        stdout_bytes: relayed.bytes[1],
        forwarded: vec![(
            format!("{host}:{port}"),
            relayed.bytes[0] + relayed.bytes[1],
        )],
        ..StreamRecord::default()
    };
    let outcome = ActionOutcome::Ok {
        summary: format!(
            "forwarded {} bytes out, {} back",
            relayed.bytes[0], relayed.bytes[1]
        ),
        count: None,
    };
    finish(
        &login.session,
        seq,
        text,
        params,
        started,
        clock,
        outcome,
        record,
        Some(stream),
    )
    .await;
}
