//! The streaming relay between an established client and backend.
//!
//! Each direction reads whatever bytes are available, frames them with a
//! [`FrameScanner`], lets the tracker see the few message types it needs, and
//! forwards the bytes in one write per read: no per-message allocation or
//! syscall. Large messages the tracker does not inspect (DataRow, CopyData)
//! are forwarded as they arrive, so a result set is never buffered whole.

use crate::codec::backend::{error_response, ErrorNotice};
use crate::codec::{frontend, FrameError, FrameScanner};
use crate::tracker::{
    backend_inspects, backend_inspects_masked, frontend_inspects, frontend_inspects_masked, Tracker,
};
use bytes::{Buf, BytesMut};
use gatehouse_core::{ActionRecord, SessionEndReason, SessionRecorder};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

/// Largest inspected backend message (CommandComplete, ErrorResponse…).
const MAX_BACKEND_MESSAGE: u32 = 64 << 20;
const READ_CHUNK: usize = 64 * 1024;

/// Bytes relayed each way.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) from_client: AtomicU64,
    pub(crate) to_client: AtomicU64,
}

/// How the relay ended.
pub(crate) struct Ending {
    pub(crate) reason: SessionEndReason,
    pub(crate) detail: Option<String>,
}

impl Ending {
    pub(crate) fn new(reason: SessionEndReason, detail: impl Into<Option<String>>) -> Self {
        Self {
            reason,
            detail: detail.into(),
        }
    }
}

/// Relays until either side closes, the client misbehaves, or shutdown.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn relay<C, B>(
    client: C,
    client_leftover: BytesMut,
    backend: B,
    backend_leftover: BytesMut,
    tracker: &Mutex<Tracker>,
    recorder: &SessionRecorder,
    counters: &Counters,
    limits: &crate::limits::SessionLimits,
    mut shutdown: watch::Receiver<bool>,
    mut cancelled: watch::Receiver<u64>,
) -> Ending
where
    C: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let (mut cr, mut cw) = tokio::io::split(client);
    let (mut br, mut bw) = tokio::io::split(backend);
    let masked = lock(tracker).masking.active;
    // The gateway's own messages to the client (a held statement's notice)
    // go through the client-writing side, at a message boundary.
    let (notices, mut notices_rx) = tokio::sync::mpsc::channel::<BytesMut>(4);
    let ending = {
        let up = client_to_backend(
            &mut cr,
            &mut bw,
            client_leftover,
            limits.max_message_size,
            tracker,
            recorder,
            counters,
            masked,
            &notices,
            &mut cancelled,
        );
        let down = backend_to_client(
            &mut br,
            &mut cw,
            backend_leftover,
            limits.max_masked_row_size,
            tracker,
            recorder,
            counters,
            masked,
            &mut notices_rx,
        );
        tokio::select! {
            e = up => e,
            e = down => e,
            _ = crate::listener::stopped(&mut shutdown) => Ending::new(SessionEndReason::GatewayShutdown, None),
        }
    };
    // After the client's Terminate the backend closes too, and its EOF may win
    // the race against the client's: the client still ended the session.
    let ending = if ending.reason == SessionEndReason::BackendClosed && lock(tracker).terminated {
        Ending::new(SessionEndReason::ClientTerminated, None)
    } else {
        ending
    };
    // Why the gateway ended the session, told to the client before it closes.
    let protocol_message;
    let fatal: Option<(&str, &str, Option<&str>, &str)> = match ending.reason {
        SessionEndReason::ProtocolError => {
            let msg = ending.detail.as_deref().unwrap_or("invalid message");
            protocol_message = format!("gatehouse closed the connection: {msg}");
            Some((
                "08P01",
                &protocol_message,
                None,
                "this is a client or driver bug; the connection cannot continue",
            ))
        }
        SessionEndReason::GatewayShutdown => Some((
            "57P01",
            "the gateway is shutting down",
            None,
            "reconnect in a moment",
        )),
        SessionEndReason::EvidenceLogFailed => Some((
            "58030",
            "gatehouse could not write its evidence log, so the statement was not run",
            ending.detail.as_deref(),
            "nothing was sent to the database; reconnect later, and tell the gateway's operator",
        )),
        SessionEndReason::LimitExceeded => Some((
            "54000",
            "gatehouse closed the connection: a message exceeded its limit",
            ending.detail.as_deref(),
            "send less in one message (split a large statement or parameter), or ask the gateway's \
             operator to raise [limits] max_message_size",
        )),
        SessionEndReason::PinnedSettingChanged => Some((
            "42501",
            "gatehouse closed the session: a setting it reads statements under was changed",
            ending.detail.as_deref(),
            "client_encoding stays UTF8 and standard_conforming_strings on through the gateway; \
             reconnect, and do not change them (also not from inside a function)",
        )),
        SessionEndReason::ClientDisconnected
        | SessionEndReason::NetworkError
        | SessionEndReason::ClientTerminated
        | SessionEndReason::BackendClosed => None,
    };
    if let Some((code, message, detail, hint)) = fatal {
        tell_client_fatal(&mut cw, code, message, detail, hint).await;
    }
    if fatal.is_some()
        || matches!(
            ending.reason,
            SessionEndReason::ClientDisconnected | SessionEndReason::NetworkError
        )
    {
        terminate_backend(&mut bw).await;
    }
    let _ = cw.shutdown().await;
    ending
}

async fn terminate_backend<W: AsyncWrite + Unpin>(bw: &mut W) {
    let mut out = BytesMut::with_capacity(5);
    frontend::terminate(&mut out);
    let _ = crate::io::send(bw, &out).await;
    let _ = bw.shutdown().await;
}

fn reserve(buf: &mut BytesMut) {
    if buf.capacity() - buf.len() < READ_CHUNK / 4 {
        buf.reserve(READ_CHUNK);
    }
}

#[allow(clippy::too_many_arguments)]
async fn client_to_backend<R, W>(
    cr: &mut R,
    bw: &mut W,
    mut buf: BytesMut,
    max_message: u32,
    tracker: &Mutex<Tracker>,
    recorder: &SessionRecorder,
    counters: &Counters,
    masked: bool,
    notices: &tokio::sync::mpsc::Sender<BytesMut>,
    cancelled: &mut watch::Receiver<u64>,
) -> Ending
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut scanner = FrameScanner::new(max_message);
    let inspects = if masked {
        frontend_inspects_masked
    } else {
        frontend_inspects
    };
    let desk = lock(tracker).approvals();
    let mut first = !buf.is_empty();
    loop {
        if !first {
            reserve(&mut buf);
            match cr.read_buf(&mut buf).await {
                Ok(0) => {
                    let terminated = lock(tracker).terminated;
                    return if terminated {
                        Ending::new(SessionEndReason::ClientTerminated, None)
                    } else {
                        Ending::new(SessionEndReason::ClientDisconnected, None)
                    };
                }
                Ok(n) => {
                    counters.from_client.fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(e) if is_disconnect(&e) => {
                    return Ending::new(
                        SessionEndReason::ClientDisconnected,
                        format!("client: {e}"),
                    )
                }
                Err(e) => {
                    return Ending::new(SessionEndReason::NetworkError, format!("client: {e}"))
                }
            }
        }
        first = false;
        loop {
            let (scanned, decided, steps) = {
                let mut t = lock(tracker);
                let r = scanner.scan(&buf, inspects, |ty, body| t.on_frontend(ty, body));
                (
                    r,
                    std::mem::take(&mut t.decided),
                    std::mem::take(&mut t.approval_steps),
                )
            };
            let s = match scanned {
                Ok(Ok(s)) => s,
                Ok(Err(e @ FrameError::TooLarge { .. })) => {
                    return Ending::new(SessionEndReason::LimitExceeded, e.to_string())
                }
                Ok(Err(e)) => return protocol_error(e),
                Err(e) => return Ending::new(SessionEndReason::ProtocolError, e.to_string()),
            };
            // Write-ahead: what was decided is durable before any of it is forwarded.
            if !decided.is_empty() {
                if let Err(e) = recorder.audit(decided).await {
                    tracing::error!(error = %e, "evidence log write failed; ending the session");
                    return Ending::new(SessionEndReason::EvidenceLogFailed, e.to_string());
                }
            }
            // Requests filed and approvals used are durable before too.
            if !steps.is_empty() {
                if let Err(e) = settle_approvals(desk.as_deref(), steps).await {
                    tracing::error!(error = %e, "approval could not be recorded; ending the session");
                    return Ending::new(SessionEndReason::EvidenceLogFailed, e.to_string());
                }
            }
            if s.forward > 0 {
                if let Err(e) = crate::io::send(bw, &buf[..s.forward]).await {
                    return Ending::new(SessionEndReason::BackendClosed, format!("backend: {e}"));
                }
                buf.advance(s.forward);
            }
            if s.wait {
                // A statement held for approval: tell the client, wait, then
                // scan it again (approved, it runs; otherwise it is refused).
                let held = lock(tracker).held.take();
                let (Some(held), Some(desk)) = (held, desk.as_deref()) else {
                    return Ending::new(
                        SessionEndReason::ProtocolError,
                        "internal: a statement waited with no approval to wait for".to_string(),
                    );
                };
                let _ = notices.send(held.hold.notice.clone()).await;
                match crate::hold::wait(desk, &held.hold, cr, &mut buf, counters, cancelled).await {
                    Ok(outcome) => lock(tracker).resolve_hold(held, outcome),
                    Err(ending) => return ending,
                }
                continue;
            }
            // A refused message: its poison goes to the backend instead.
            let Some((with, skip)) = s.replace else { break };
            if let Err(e) = crate::io::send(bw, &with).await {
                return Ending::new(SessionEndReason::BackendClosed, format!("backend: {e}"));
            }
            buf.advance(skip);
        }
    }
}

/// Files the requests and marks the approvals used that the statements
/// just decided carry.
async fn settle_approvals(
    desk: Option<&gatehouse_core::ApprovalDesk>,
    steps: Vec<crate::gate::ApprovalStep>,
) -> Result<(), gatehouse_core::ApprovalError> {
    // Steps come only from a gate with a desk (the gate files nothing without one).
    let Some(desk) = desk else {
        return Ok(());
    };
    for step in steps {
        match step {
            crate::gate::ApprovalStep::File(request) => desk.submit(*request).await?,
            crate::gate::ApprovalStep::Use(id) => {
                desk.mark_used(&id, gatehouse_core::Timestamp::now())
                    .await?
            }
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn backend_to_client<R, W>(
    br: &mut R,
    cw: &mut W,
    mut buf: BytesMut,
    max_masked_row: u32,
    tracker: &Mutex<Tracker>,
    recorder: &SessionRecorder,
    counters: &Counters,
    masked: bool,
    notices: &mut tokio::sync::mpsc::Receiver<BytesMut>,
) -> Ending
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (max, inspects): (u32, fn(u8) -> bool) = if masked {
        (max_masked_row, backend_inspects_masked)
    } else {
        (MAX_BACKEND_MESSAGE, backend_inspects)
    };
    let mut scanner = FrameScanner::new(max);
    let mut finished: Vec<ActionRecord> = Vec::new();
    // Output assembled when some message was replaced (masked): still one write per read.
    let mut out = BytesMut::new();
    let mut first = !buf.is_empty();
    loop {
        if !first {
            reserve(&mut buf);
            let read = tokio::select! {
                biased;
                r = br.read_buf(&mut buf) => r,
                Some(notice) = notices.recv(), if scanner.at_boundary() => {
                    if let Err(e) = crate::io::send(cw, &notice).await {
                        return client_gone(e);
                    }
                    continue;
                }
            };
            match read {
                Ok(0) => return Ending::new(SessionEndReason::BackendClosed, None),
                Ok(_) => {}
                Err(e) if is_disconnect(&e) => {
                    return Ending::new(SessionEndReason::BackendClosed, format!("backend: {e}"))
                }
                Err(e) => {
                    return Ending::new(SessionEndReason::NetworkError, format!("backend: {e}"))
                }
            }
        }
        first = false;
        loop {
            let (scanned, pinned_broken) = {
                let mut t = lock(tracker);
                let r = scanner.scan(&buf, inspects, |ty, body| t.on_backend(ty, body));
                finished.append(&mut t.done);
                (r, t.pinned_broken.take())
            };
            if let Some(reason) = pinned_broken {
                // Nothing more of this session is relayed either way.
                for r in finished.drain(..) {
                    let _ = recorder.statement(r).await;
                }
                return Ending::new(SessionEndReason::PinnedSettingChanged, reason);
            }
            let s = match scanned {
                Ok(Ok(s)) => s,
                Ok(Err(e @ FrameError::TooLarge { .. })) if masked => {
                    // A row masking would have to hold whole beyond the limit: withheld.
                    let detail = format!(
                        "result row too large to mask ({e}; [limits] max_masked_row_size); nothing of it was sent"
                    );
                    tell_client_limit(cw, &detail).await;
                    return Ending::new(SessionEndReason::LimitExceeded, detail);
                }
                Ok(Err(e)) => {
                    let detail = format!("backend sent an unframeable message: {e}");
                    tell_client(cw, &detail).await;
                    return Ending::new(SessionEndReason::NetworkError, detail);
                }
                Err(e) => {
                    let detail = format!("backend sent a malformed message: {e}");
                    tell_client(cw, &detail).await;
                    return Ending::new(SessionEndReason::NetworkError, detail);
                }
            };
            if s.replace.is_none() && !s.wait && out.is_empty() {
                // The common case: forward what arrived as it is.
                if s.forward > 0 {
                    if let Err(e) = crate::io::send(cw, &buf[..s.forward]).await {
                        return client_gone(e);
                    }
                    counters
                        .to_client
                        .fetch_add(s.forward as u64, Ordering::Relaxed);
                    buf.advance(s.forward);
                }
                break;
            }
            out.extend_from_slice(&buf[..s.forward]);
            buf.advance(s.forward);
            // A replaced message: the backend's error for a poison, or a masked one.
            if let Some((with, skip)) = s.replace {
                out.extend_from_slice(&with);
                buf.advance(skip);
                continue;
            }
            if s.wait {
                // A result's plan needs table names from the catalog.
                if let Err(e) = flush(cw, &mut out, counters).await {
                    return client_gone(e);
                }
                resolve_tables(tracker).await;
                continue;
            }
            break;
        }
        if let Err(e) = flush(cw, &mut out, counters).await {
            return client_gone(e);
        }
        for r in finished.drain(..) {
            if recorder.statement(r).await.is_err() {
                return Ending::new(
                    SessionEndReason::GatewayShutdown,
                    "session recorder stopped".to_string(),
                );
            }
        }
    }
}

/// Looks up the tables a result plan waits for, without holding the tracker.
async fn resolve_tables(tracker: &Mutex<Tracker>) {
    let (connection, wanted) = {
        let mut t = lock(tracker);
        (t.masking.lookup_handle(), t.masking.take_wanted())
    };
    let Some(connection) = connection else { return };
    let found = crate::mask::lookup(&connection, wanted.clone()).await;
    let mut t = lock(tracker);
    match found {
        Ok(found) => t.masking.add_tables(&wanted, found),
        Err(e) => t.masking.catalog_failed(e),
    }
}

async fn flush<W: AsyncWrite + Unpin>(
    cw: &mut W,
    out: &mut BytesMut,
    counters: &Counters,
) -> std::io::Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    crate::io::send(cw, out).await?;
    counters
        .to_client
        .fetch_add(out.len() as u64, Ordering::Relaxed);
    out.clear();
    Ok(())
}

fn client_gone(e: std::io::Error) -> Ending {
    Ending::new(SessionEndReason::ClientDisconnected, format!("client: {e}"))
}

/// Tells the client why its session ends, when the backend's stream broke.
async fn tell_client<W: AsyncWrite + Unpin>(cw: &mut W, detail: &str) {
    let message = format!("gatehouse closed the connection: the {detail}");
    let hint = "no part of the message was relayed; reconnect, and tell the gateway's operator if it recurs";
    tell_client_fatal(cw, "08P01", &message, None, hint).await;
}

/// Tells the client a limit ended its session (what the backend sent exceeded it).
async fn tell_client_limit<W: AsyncWrite + Unpin>(cw: &mut W, detail: &str) {
    let message = format!("gatehouse closed the connection: {detail}");
    let hint = "select less in one row, or ask the gateway's operator to raise the limit";
    tell_client_fatal(cw, "54000", &message, None, hint).await;
}

/// Sends the client a FATAL ErrorResponse (best effort: it may be gone).
async fn tell_client_fatal<W: AsyncWrite + Unpin>(
    cw: &mut W,
    code: &str,
    message: &str,
    detail: Option<&str>,
    hint: &str,
) {
    let mut out = BytesMut::new();
    error_response(
        &mut out,
        &ErrorNotice {
            severity: "FATAL",
            code,
            message,
            detail,
            hint: Some(hint),
        },
    );
    let _ = crate::io::send(cw, &out).await;
}

/// A peer that went away (including TLS without close_notify) rather than a fault.
fn is_disconnect(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe
    )
}

fn protocol_error(e: FrameError) -> Ending {
    Ending::new(SessionEndReason::ProtocolError, e.to_string())
}

/// Locks the tracker. It is only ever locked for synchronous scanning, never
/// across an await; a poisoned lock means a panic mid-scan, and the state is
/// still usable for recording.
pub(crate) fn lock(t: &Mutex<Tracker>) -> std::sync::MutexGuard<'_, Tracker> {
    t.lock().unwrap_or_else(|p| p.into_inner())
}
