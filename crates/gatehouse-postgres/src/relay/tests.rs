//! The relay in process: a client and a scripted backend on in-memory
//! duplex streams, a real session opened through the login sequence
//! (`gatehouse-testkit`), and assertions on what the session reported and
//! when, against what each side saw.

use super::*;
use crate::codec::backend::{error_response, raw, ErrorNotice};
use crate::gate::{Gate, GateSettings};
use crate::io::read_message;
use crate::mask::SessionMasking;
use gatehouse_core::Protocol;
use gatehouse_testkit::{open_session, OpenedSession};
use std::sync::Arc;
use tokio::io::{AsyncWriteExt, DuplexStream};

/// Reads may run out of policy: a select on anything, nothing else.
const SELECT_ONLY: &str = r#"
permit (principal, action == Gatehouse::Action::"connect", resource);
permit (principal, action == Gatehouse::Action::"select", resource);
"#;

fn query(sql: &str) -> BytesMut {
    let mut body = sql.as_bytes().to_vec();
    body.push(0);
    let mut out = BytesMut::new();
    raw(&mut out, b'Q', &body);
    out
}

fn command_complete_and_ready(tag: &str) -> BytesMut {
    let mut tag = tag.as_bytes().to_vec();
    tag.push(0);
    let mut out = BytesMut::new();
    raw(&mut out, b'C', &tag);
    raw(&mut out, b'Z', b"I");
    out
}

/// A session of `subject` under [`SELECT_ONLY`], its tracker as
/// `session.rs` builds it, and the two legs: the test's ends (client,
/// backend) and the relay's (client, backend).
struct Relayed {
    opened: OpenedSession,
    tracker: Mutex<Tracker>,
    client: DuplexStream,
    backend: DuplexStream,
    gw_client: DuplexStream,
    gw_backend: DuplexStream,
}

/// Selects and updates.
const SELECT_AND_UPDATE: &str = r#"
permit (principal, action == Gatehouse::Action::"connect", resource);
permit (principal, action == Gatehouse::Action::"select", resource);
permit (principal, action == Gatehouse::Action::"update", resource);
"#;

async fn relayed(subject: &str) -> Relayed {
    relayed_under(subject, SELECT_ONLY).await
}

async fn relayed_under(subject: &str, policy: &str) -> Relayed {
    let opened = open_session(
        Protocol::Postgres,
        "app-db",
        "postgres",
        subject,
        &[],
        policy,
    )
    .await;
    let settings = GateSettings {
        analyzer: Arc::new(gatehouse_sql::Analyzer::new(64)),
        policy: opened.policy.clone(),
        functions: Default::default(),
    };
    let session = &opened.session;
    let mut gate = Gate::new(
        settings,
        session.identity().clone(),
        session.connection().to_string(),
        "127.0.0.1".parse().unwrap(),
    );
    gate.set_search_path(vec!["public".into()], "app");
    gate.set_session(session.clone());
    let masking = SessionMasking::new(
        None,
        Arc::new(gatehouse_mask::MaskingEngine::secrets_only()),
        &[],
    );
    let tracker = Mutex::new(Tracker::new(session.id(), gate, masking));
    let (client, gw_client) = tokio::io::duplex(64 * 1024);
    let (gw_backend, backend) = tokio::io::duplex(64 * 1024);
    Relayed {
        opened,
        tracker,
        client,
        backend,
        gw_client,
        gw_backend,
    }
}

/// The next whole message `stream` sends.
async fn next(stream: &mut DuplexStream, buf: &mut BytesMut) -> (u8, BytesMut) {
    read_message(stream, buf, 1 << 20)
        .await
        .unwrap()
        .expect("a message, not the end of the stream")
}

/// Runs the relay between `client` and `backend` (the gateway's ends).
async fn run_relay(
    opened: &OpenedSession,
    tracker: &Mutex<Tracker>,
    client: DuplexStream,
    backend: DuplexStream,
) -> Ending {
    // Kept alive for the relay's whole run: a dropped sender would read as a shutdown.
    let (_stop, shutdown) = watch::channel(false);
    let (_cancel, cancelled) = watch::channel(0u64);
    let legs = Legs {
        client,
        client_leftover: BytesMut::new(),
        backend,
        backend_leftover: BytesMut::new(),
    };
    let signals = Signals {
        shutdown,
        cancelled,
    };
    let limits = crate::limits::SessionLimits::default();
    relay(legs, tracker, &opened.session, &limits, signals).await
}

/// Waits (boundedly) until `done` holds of what the session reported.
async fn reported_until(opened: &OpenedSession, done: impl Fn(&[String]) -> bool) -> Vec<String> {
    for _ in 0..200 {
        let kinds = opened.reported.kinds();
        if done(&kinds) {
            return kinds;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    opened.reported.kinds()
}

#[tokio::test]
async fn an_allowed_statement_is_durable_before_the_backend_sees_it_and_recorded_after() {
    let Relayed {
        opened,
        tracker,
        mut client,
        mut backend,
        gw_client,
        gw_backend,
    } = relayed("ci").await;
    let reported = opened.reported.clone();
    let script = async move {
        client.write_all(&query("select 1")).await.unwrap();
        // The scripted backend: the statement arrives only once its decision is durable.
        let mut bbuf = BytesMut::new();
        let (ty, body) = next(&mut backend, &mut bbuf).await;
        assert_eq!((ty, &body[..]), (b'Q', &b"select 1\0"[..]));
        let decided = reported.decided();
        assert_eq!(
            decided.len(),
            1,
            "one decision, durable before the backend saw it"
        );
        assert_eq!(decided[0]["text"], "select 1");
        assert_eq!(decided[0]["decision"]["decision"], "allow");
        backend
            .write_all(&command_complete_and_ready("SELECT 1"))
            .await
            .unwrap();
        let mut cbuf = BytesMut::new();
        let (ty, body) = next(&mut client, &mut cbuf).await;
        assert_eq!((ty, &body[..]), (b'C', &b"SELECT 1\0"[..]));
        let mut out = BytesMut::new();
        crate::codec::frontend::terminate(&mut out);
        client.write_all(&out).await.unwrap();
        // The backend sees the Terminate, then closes.
        let (ty, _) = next(&mut backend, &mut bbuf).await;
        assert_eq!(ty, b'X');
        drop(backend);
    };
    let (ending, ()) = tokio::join!(run_relay(&opened, &tracker, gw_client, gw_backend), script);
    assert_eq!(ending.reason, SessionEndReason::ClientTerminated);
    let kinds = reported_until(&opened, |k| k.iter().any(|k| k == "statement_result")).await;
    let decided_at = kinds.iter().position(|k| k == "statement").unwrap();
    let result_at = kinds.iter().position(|k| k == "statement_result").unwrap();
    assert!(decided_at < result_at, "{kinds:?}");
    assert_eq!(
        &kinds[..3],
        ["auth_success", "session_start", "statement"],
        "the login, then the session, then the decision"
    );
}

#[tokio::test]
async fn a_refused_statement_never_reaches_the_backend_and_the_client_is_told_why() {
    let Relayed {
        opened,
        tracker,
        mut client,
        mut backend,
        gw_client,
        gw_backend,
    } = relayed("agent").await;
    let reported = opened.reported.clone();
    let script = async move {
        client
            .write_all(&query("delete from orders"))
            .await
            .unwrap();
        let mut bbuf = BytesMut::new();
        let (ty, body) = next(&mut backend, &mut bbuf).await;
        assert_eq!(ty, b'Q');
        let sent = String::from_utf8_lossy(&body).to_string();
        assert!(!sent.contains("delete"), "the backend got {sent:?}");
        assert!(
            sent.contains("gatehouse refused"),
            "the backend got {sent:?}"
        );
        let decided = reported.decided();
        assert_eq!(decided[0]["decision"]["decision"], "deny");
        // The backend fails the poison as it fails any syntax error.
        let mut answer = BytesMut::new();
        error_response(
            &mut answer,
            &ErrorNotice {
                severity: "ERROR",
                code: "42601",
                message: "syntax error at or near \"!\"",
                detail: None,
                hint: None,
            },
        );
        raw(&mut answer, b'Z', b"I");
        backend.write_all(&answer).await.unwrap();
        let mut cbuf = BytesMut::new();
        let (ty, body) = next(&mut client, &mut cbuf).await;
        assert_eq!(ty, b'E');
        let error = crate::codec::backend::parse_error_fields(&body).unwrap();
        assert_eq!(error.code, "42501");
        assert!(
            error.message.contains("permission denied"),
            "{}",
            error.message
        );
        let (ty, _) = next(&mut client, &mut cbuf).await;
        assert_eq!(ty, b'Z', "the session goes on after a refusal");
        drop(client);
        // The backend stays up: the client's leaving ends the session.
        backend
    };
    let (ending, _backend) =
        tokio::join!(run_relay(&opened, &tracker, gw_client, gw_backend), script);
    assert_eq!(ending.reason, SessionEndReason::ClientDisconnected);
    opened.session.close(ending.reason, ending.detail).await;
    let kinds = reported_until(&opened, |k| k.iter().any(|k| k == "session_end")).await;
    assert!(kinds.iter().any(|k| k == "statement_result"), "{kinds:?}");
}

/// What the client has received within a short while: nothing, if the
/// gateway holds it back (a missing hold fails here; a held answer never
/// arrives early, however slow the machine).
async fn nothing_arrives(stream: &mut DuplexStream) -> bool {
    let mut byte = [0u8; 1];
    tokio::time::timeout(
        std::time::Duration::from_millis(200),
        tokio::io::AsyncReadExt::read(stream, &mut byte),
    )
    .await
    .is_err()
}

fn terminate() -> BytesMut {
    let mut out = BytesMut::new();
    crate::codec::frontend::terminate(&mut out);
    out
}

#[tokio::test]
async fn a_read_runs_while_its_event_is_written_and_its_answer_waits_until_durable() {
    let Relayed {
        opened,
        tracker,
        mut client,
        mut backend,
        gw_client,
        gw_backend,
    } = relayed("ci").await;
    let reported = opened.reported.clone();
    let script = async move {
        reported.hold();
        client
            .write_all(&query("select balance from accounts where id = 7"))
            .await
            .unwrap();
        // The read reaches the backend while its decision is still being written…
        let mut bbuf = BytesMut::new();
        let (ty, _) = next(&mut backend, &mut bbuf).await;
        assert_eq!(ty, b'Q');
        assert!(reported.decided().is_empty(), "not durable yet");
        assert_eq!(reported.waiting(), 1);
        backend
            .write_all(&command_complete_and_ready("SELECT 1"))
            .await
            .unwrap();
        // …but its answer waits for it.
        assert!(
            nothing_arrives(&mut client).await,
            "an answer reached the client before its statement's event was durable"
        );
        reported.release();
        let mut cbuf = BytesMut::new();
        let (ty, body) = next(&mut client, &mut cbuf).await;
        assert_eq!((ty, &body[..]), (b'C', &b"SELECT 1\0"[..]));
        assert_eq!(reported.decided().len(), 1);
        client.write_all(&terminate()).await.unwrap();
        let (ty, _) = next(&mut backend, &mut bbuf).await;
        assert_eq!(ty, b'X');
        drop(backend);
    };
    let (ending, ()) = tokio::join!(run_relay(&opened, &tracker, gw_client, gw_backend), script);
    assert_eq!(ending.reason, SessionEndReason::ClientTerminated);
}

#[tokio::test]
async fn a_statement_with_an_effect_waits_for_its_event_before_the_backend_sees_it() {
    let Relayed {
        opened,
        tracker,
        mut client,
        mut backend,
        gw_client,
        gw_backend,
    } = relayed_under("ci", SELECT_AND_UPDATE).await;
    let reported = opened.reported.clone();
    let script = async move {
        reported.hold();
        // A read with a write behind it in the same packet: the write holds both.
        let mut both = query("select 1");
        both.extend_from_slice(&query("update accounts set balance = 0 where id = 7"));
        client.write_all(&both).await.unwrap();
        assert!(
            nothing_arrives(&mut backend).await,
            "a write reached the backend before its event was durable"
        );
        reported.release();
        let mut bbuf = BytesMut::new();
        let (_, first) = next(&mut backend, &mut bbuf).await;
        assert_eq!(&first[..], b"select 1\0");
        let (_, second) = next(&mut backend, &mut bbuf).await;
        assert!(second.starts_with(b"update"));
        let decided = reported.decided();
        assert_eq!(decided.len(), 2, "{decided:?}");
        client.write_all(&terminate()).await.unwrap();
        let (ty, _) = next(&mut backend, &mut bbuf).await;
        assert_eq!(ty, b'X');
        drop(backend);
    };
    let (ending, ()) = tokio::join!(run_relay(&opened, &tracker, gw_client, gw_backend), script);
    assert_eq!(ending.reason, SessionEndReason::ClientTerminated);
}

#[tokio::test]
async fn a_read_whose_event_cannot_be_written_never_shows_its_answer() {
    let Relayed {
        opened,
        tracker,
        mut client,
        mut backend,
        gw_client,
        gw_backend,
    } = relayed("ci").await;
    let reported = opened.reported.clone();
    let script = async move {
        reported.hold();
        client
            .write_all(&query("select secret from vault"))
            .await
            .unwrap();
        let mut bbuf = BytesMut::new();
        let (ty, _) = next(&mut backend, &mut bbuf).await;
        assert_eq!(ty, b'Q');
        let mut answer = BytesMut::new();
        raw(&mut answer, b'D', b"\0\x01\0\0\0\x0bhunter2-row");
        answer.extend_from_slice(&command_complete_and_ready("SELECT 1"));
        backend.write_all(&answer).await.unwrap();
        assert!(nothing_arrives(&mut client).await);
        reported.fail_held();
        // The client learns why the session ended, and nothing of the row.
        let mut received = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut client, &mut received)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&received);
        assert!(!text.contains("hunter2"), "{text:?}");
        assert_eq!(received.first(), Some(&b'E'), "{text:?}");
        backend
    };
    let (ending, _backend) =
        tokio::join!(run_relay(&opened, &tracker, gw_client, gw_backend), script);
    assert_eq!(ending.reason, SessionEndReason::EvidenceLogFailed);
}
