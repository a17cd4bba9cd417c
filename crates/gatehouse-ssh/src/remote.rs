//! Remote forwarding (`ssh -R`), only where a policy allows
//! `ssh:remote-forward` by name: the request to listen on the host is
//! decided (with the address and port asked for) and recorded; the gateway
//! then asks the host itself, and each connection the host accepts there
//! is bridged to a new forwarded channel to the caller, relayed as bytes
//! and recorded with its byte counts. A connection for a port the gateway
//! did not ask for is refused.

use crate::agent::Bridge;
use crate::caller::Login;
use crate::channel::{finish, write_ahead};
use crate::relay::{self, CallerSide, Carries, Plan, TargetSide};
use gatehouse_core::{ActionOutcome, Decided, DecisionRecord, StreamRecord, Timestamp};
use gatehouse_policy::{Decision, PolicyMode, SshRequestFacts};
use russh::client::ChannelOpenHandle;
use russh::{Channel, ChannelOpenFailure};

/// Decides a caller's request to listen on the host at `address:port`,
/// asks the host when it is allowed (setting `port` to the one bound when
/// it asked for any), and records it. `true` when the host listens.
pub(crate) async fn request(login: &Login, address: &str, port: &mut u32) -> bool {
    let session = &login.session;
    let target = &login.target;
    let policy = login.gw.settings.policy.clone();
    let seq = session.next_seq();
    let text = gatehouse_session::recording::mask_for_record(
        &target.masking,
        &format!("(remote forward {address}:{port})"),
    );
    let started = Timestamp::now();
    let clock = std::time::Instant::now();
    let Ok(asked) = u16::try_from(*port) else {
        let why = format!("port {port} is not a TCP port");
        crate::channel::refuse_unread(login, &text, &why).await;
        return false;
    };
    let (engine, _) = policy.current();
    let d = engine.decide_ssh(&SshRequestFacts {
        identity: session.identity(),
        connection: &target.name,
        client_ip: login.peer.ip(),
        now: Timestamp::now(),
        approved: false,
        action: "ssh:remote-forward",
        host: &target.host,
        port: target.port,
        user: &login.user,
        command: "",
        pty: None,
        env: &[],
        subsystem: "",
        operation: "",
        paths: &[],
        forward: Some((address, asked)),
    });
    let mode = policy.mode();
    let allowed = matches!(d, Decision::Allow { .. }) || mode == PolicyMode::Audit;
    let mut record = gatehouse_session::gate::record(&d, mode, mode == PolicyMode::Audit);
    if !allowed {
        // Approval is not waited for here: the request is refused.
        record.decision = Decided::Deny;
    }
    if write_ahead(session, seq, &text, 0, &record, None)
        .await
        .is_err()
    {
        return false;
    }
    let refused = |message: String| ActionOutcome::Error {
        code: "refused".into(),
        message,
    };
    if !allowed {
        let why = record.reason.clone().unwrap_or_default();
        finish(
            session,
            seq,
            text,
            Vec::new(),
            started,
            clock,
            refused(why),
            record,
            None,
        )
        .await;
        return false;
    }
    // Noted before the host is asked: it listens before it answers, and a
    // connection may come in between (a port it picks is noted after).
    let asked_port = *port;
    if asked_port != 0 {
        login.note_forward(asked_port);
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
    let outcome = match bound {
        Ok(bound) => {
            if *port == 0 {
                *port = bound;
            }
            login.note_forward(*port);
            ActionOutcome::Ok {
                summary: format!("listening on {address}:{port}"),
                count: None,
            }
        }
        Err(why) => {
            if asked_port != 0 {
                login.drop_forward(asked_port);
            }
            refused(why)
        }
    };
    let ok = matches!(outcome, ActionOutcome::Ok { .. });
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
    ok
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

/// The host accepted a connection on a forwarded port: bridged to the
/// caller when the gateway asked for that port, refused otherwise.
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
    let Some(slot) = crate::caller::channel_slot(&bridge.open_channels) else {
        reply.reject(ChannelOpenFailure::ResourceShortage).await;
        return;
    };
    tokio::spawn(async move {
        let _slot = slot;
        let session = &bridge.session;
        let seq = session.next_seq();
        let text = format!(
            "(remote forward connection to {}:{} from {}:{})",
            connected.0, connected.1, originator.0, originator.1
        );
        let record = DecisionRecord {
            decision: Decided::Allow,
            policies: Vec::new(),
            mode: gatehouse_core::DecidedIn::Enforce,
            reason: Some(format!(
                "the session's remote forward of port {} was allowed",
                connected.1
            )),
        };
        let started = Timestamp::now();
        let clock = std::time::Instant::now();
        if write_ahead(session, seq, &text, 0, &record, None)
            .await
            .is_err()
        {
            return;
        }
        let opening = bridge.caller.channel_open_forwarded_tcpip(
            connected.0.clone(),
            connected.1,
            originator.0.clone(),
            originator.1,
        );
        // A caller that has gone never answers: not waited for long.
        let opened = tokio::time::timeout(crate::agent::OPEN_WAIT, opening)
            .await
            .unwrap_or(Err(russh::Error::SendError));
        let caller = match opened {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "ssh: the caller did not take a forwarded connection");
                reply.reject(ChannelOpenFailure::ConnectFailed).await;
                let outcome = ActionOutcome::Error {
                    code: "unreachable".into(),
                    message: "the caller did not take the connection".into(),
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
            protocol: "ssh-remote-forward".into(),
            stdin_bytes: relayed.bytes[0],
            stdout_bytes: relayed.bytes[1],
            forwarded: vec![(
                format!("{}:{}", connected.0, connected.1),
                relayed.bytes[0] + relayed.bytes[1],
            )],
            ..StreamRecord::default()
        };
        let outcome = ActionOutcome::Ok {
            summary: format!(
                "forwarded {} bytes from the caller, {} to it",
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
