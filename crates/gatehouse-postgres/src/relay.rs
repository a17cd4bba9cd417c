//! The streaming relay between an established client and backend.
//!
//! Each direction reads whatever bytes are available, frames them with a
//! [`FrameScanner`], lets the tracker see the few message types it needs, and
//! forwards the bytes in one write per read: no per-message allocation or
//! syscall. Large messages the tracker does not inspect (DataRow, CopyData)
//! are forwarded as they arrive, so a result set is never buffered whole.

use crate::codec::{frontend, FrameError, FrameScanner};
use crate::ending::{stopped, Ending};
use crate::refusals;
use crate::tracker::{
    backend_inspects, backend_inspects_masked, frontend_inspects, Answered, Pause, Tracker,
};
use bytes::{Buf, BytesMut};
use gatehouse_core::{PendingAppend, SessionEndReason};
use gatehouse_session::{Committed, Counters, Session, SessionError, WriteAhead};
use std::sync::Mutex;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::watch;

/// Largest inspected backend message (CommandComplete, ErrorResponse…).
const MAX_BACKEND_MESSAGE: u32 = 64 << 20;
const READ_CHUNK: usize = 64 * 1024;
/// Reads forwarded while their events are written, at most; past it a read
/// waits for its own (a client pipelining that far loses no time to it).
const READS_IN_FLIGHT: usize = 64;

/// The two legs of a session, each with what was read past the handshake.
pub(crate) struct Legs<C, B> {
    pub(crate) client: C,
    pub(crate) client_leftover: BytesMut,
    pub(crate) backend: B,
    pub(crate) backend_leftover: BytesMut,
}

/// What ends a relay besides its legs: the gateway's shutdown, and the
/// session's cancel requests (they end a hold).
pub(crate) struct Signals {
    pub(crate) shutdown: watch::Receiver<bool>,
    pub(crate) cancelled: watch::Receiver<u64>,
}

/// Relays until either side closes, the client misbehaves, or shutdown.
pub(crate) async fn relay<C, B>(
    legs: Legs<C, B>,
    tracker: &Mutex<Tracker>,
    session: &Session,
    limits: &crate::limits::SessionLimits,
    signals: Signals,
) -> Ending
where
    C: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let Signals {
        mut shutdown,
        mut cancelled,
    } = signals;
    let (mut cr, mut cw) = tokio::io::split(legs.client);
    let (mut br, mut bw) = tokio::io::split(legs.backend);
    let (client_leftover, backend_leftover) = (legs.client_leftover, legs.backend_leftover);
    let masked = lock(tracker).masking.active;
    // What the backend side has the gateway send to finish a capped statement.
    let (resume_tx, mut resume_rx) = tokio::sync::mpsc::channel::<BytesMut>(4);
    // The gateway's own messages to the client (a held statement's notice)
    // go through the client-writing side, at a message boundary.
    let (notices, mut notices_rx) = tokio::sync::mpsc::channel::<BytesMut>(4);
    // Outlives the two directions: what the backend side completed but had
    // not yet handed over when the session ended is recorded below.
    let mut answered = Answered::default();
    // Reads forwarded while their events are written: nothing more of the
    // backend's reaches the client until each is durable.
    let (reads_tx, mut reads_rx) = tokio::sync::mpsc::channel::<PendingAppend>(READS_IN_FLIGHT);
    let ending = {
        let up = client_to_backend(
            &mut cr,
            &mut bw,
            client_leftover,
            limits.max_message_size,
            tracker,
            session,
            &notices,
            &mut cancelled,
            &mut resume_rx,
            &reads_tx,
        );
        let down = backend_to_client(
            &mut br,
            &mut cw,
            backend_leftover,
            limits.max_masked_row_size,
            tracker,
            session,
            masked,
            &mut notices_rx,
            &mut answered,
            &resume_tx,
            &mut reads_rx,
        );
        tokio::select! {
            e = up => e,
            e = down => e,
            _ = stopped(&mut shutdown) => Ending::new(SessionEndReason::GatewayShutdown, None),
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
    let fatal = refusals::session_ended(&ending);
    if let Some(fatal) = &fatal {
        let _ = crate::io::send(&mut cw, fatal).await;
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
    for r in answered.finished.drain(..) {
        let _ = session.finished(r).await;
    }
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
    session: &Session,
    notices: &tokio::sync::mpsc::Sender<BytesMut>,
    cancelled: &mut watch::Receiver<u64>,
    resume: &mut tokio::sync::mpsc::Receiver<BytesMut>,
    reads: &tokio::sync::mpsc::Sender<PendingAppend>,
) -> Ending
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut scanner = FrameScanner::new(max_message);
    let counters = session.counters();
    let mut write_ahead = session.write_ahead();
    let mut first = !buf.is_empty();
    loop {
        if !first {
            reserve(&mut buf);
            let read = tokio::select! {
                r = cr.read_buf(&mut buf) => r,
                Some(bytes) = resume.recv() => {
                    if let Err(e) = resumed(bw, tracker, &bytes).await {
                        return e;
                    }
                    continue;
                }
            };
            match read {
                Ok(0) => {
                    let terminated = lock(tracker).terminated;
                    return if terminated {
                        Ending::new(SessionEndReason::ClientTerminated, None)
                    } else {
                        Ending::new(SessionEndReason::ClientDisconnected, None)
                    };
                }
                Ok(n) => counters.read(n),
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
            let scanned = {
                let mut t = lock(tracker);
                let w = &mut write_ahead;
                scanner.scan(&buf, frontend_inspects, |ty, body| {
                    t.on_frontend(ty, body, w)
                })
            };
            let s = match scanned {
                Ok(Ok(s)) => s,
                Ok(Err(e @ FrameError::TooLarge { .. })) => {
                    return Ending::new(SessionEndReason::LimitExceeded, e.to_string())
                }
                Ok(Err(e)) => return protocol_error(e),
                Err(e) => return Ending::new(SessionEndReason::ProtocolError, e.to_string()),
            };
            // Write-ahead: what was decided (and the approvals it files or
            // takes) is durable before any of it is forwarded; reads alone
            // go while theirs is written, their answers held until it is.
            if !write_ahead.is_empty() {
                if let Err(e) = write_ahead_of(session, &mut write_ahead, reads).await {
                    tracing::error!(error = %e, "evidence log write failed; ending the session");
                    return Ending::new(SessionEndReason::EvidenceLogFailed, e.to_string());
                }
            }
            if s.forward > 0 {
                if let Err(e) = crate::io::send(bw, &buf[..s.forward]).await {
                    return Ending::new(SessionEndReason::BackendClosed, format!("backend: {e}"));
                }
                buf.advance(s.forward);
            }
            match s.pause {
                Some(Pause::Approval(held)) => {
                    // Held for approval: tell the client, wait, then scan the
                    // statement again (approved, it runs; otherwise it is refused).
                    let _ = notices.send(held.hold.notice.clone()).await;
                    match crate::hold::wait(session, &held.hold, cr, &mut buf, cancelled).await {
                        Ok(outcome) => lock(tracker).resolve_hold(&held, outcome),
                        Err(ending) => return ending,
                    }
                    continue;
                }
                Some(Pause::RowCap) => {
                    // A capped statement runs: wait until the gateway has
                    // finished it, then scan the waiting message again.
                    let Some(bytes) = resume.recv().await else {
                        return Ending::new(SessionEndReason::BackendClosed, None);
                    };
                    if let Err(e) = resumed(bw, tracker, &bytes).await {
                        return e;
                    }
                    continue;
                }
                // The frontend pauses only for approvals and row caps.
                Some(Pause::CatalogLookup) | None => {}
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

#[allow(clippy::too_many_arguments)]
async fn backend_to_client<R, W>(
    br: &mut R,
    cw: &mut W,
    mut buf: BytesMut,
    max_masked_row: u32,
    tracker: &Mutex<Tracker>,
    session: &Session,
    masked: bool,
    notices: &mut tokio::sync::mpsc::Receiver<BytesMut>,
    answered: &mut Answered,
    resume: &tokio::sync::mpsc::Sender<BytesMut>,
    reads: &mut tokio::sync::mpsc::Receiver<PendingAppend>,
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
    let counters = session.counters();
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
            let scanned = {
                let mut t = lock(tracker);
                let done = &mut *answered;
                scanner.scan(&buf, inspects, |ty, body| t.on_backend(ty, body, done))
            };
            // A request filed for a write over its row cap is durable before its
            // refusal (which names it) can reach the client.
            if let Some(request) = answered.file.take() {
                let mut w = session.write_ahead();
                w.file(request);
                if let Err(e) = session.commit(&mut w).await {
                    tracing::error!(error = %e, "evidence log write failed; ending the session");
                    return Ending::new(SessionEndReason::EvidenceLogFailed, e.to_string());
                }
            }
            // Columns found sensitive are recorded whatever ends the session next.
            if !answered.found.is_empty() {
                record_found(tracker, std::mem::take(&mut answered.found));
            }
            if let Some(reason) = answered.setting_changed.take() {
                // Nothing more of this session is relayed, not even this read
                // (it ran under the changed setting); its records are kept.
                return Ending::new(SessionEndReason::PinnedSettingChanged, reason);
            }
            let mut s = match scanned {
                Ok(Ok(s)) => s,
                Ok(Err(e @ FrameError::TooLarge { .. })) if masked => {
                    // A row masking would have to hold whole beyond the limit: withheld.
                    let detail = format!(
                        "result row too large to mask ({e}; [limits] max_masked_row_size); nothing of it was sent"
                    );
                    let _ = crate::io::send(cw, &refusals::row_too_large(&detail)).await;
                    return Ending::new(SessionEndReason::LimitExceeded, detail);
                }
                Ok(Err(e)) => {
                    let detail = format!("backend sent an unframeable message: {e}");
                    let _ = crate::io::send(cw, &refusals::backend_broke(&detail)).await;
                    return Ending::new(SessionEndReason::NetworkError, detail);
                }
                Err(e) => {
                    let detail = format!("backend sent a malformed message: {e}");
                    let _ = crate::io::send(cw, &refusals::backend_broke(&detail)).await;
                    return Ending::new(SessionEndReason::NetworkError, detail);
                }
            };
            if s.replace.is_none() && s.pause.is_none() && out.is_empty() {
                // The common case: forward what arrived as it is.
                if s.forward > 0 {
                    if let Err(e) = reads_durable(reads).await {
                        return e;
                    }
                    if let Err(e) = crate::io::send(cw, &buf[..s.forward]).await {
                        return client_gone(e);
                    }
                    counters.written(s.forward);
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
            match s.pause.take() {
                Some(Pause::CatalogLookup) => {
                    // A result's plan needs table names from the catalog.
                    if let Err(e) = reads_durable(reads).await {
                        return e;
                    }
                    if let Err(e) = flush(cw, &mut out, counters).await {
                        return client_gone(e);
                    }
                    resolve_tables(tracker).await;
                    continue;
                }
                // The backend never pauses for approvals or row caps.
                Some(Pause::Approval(_) | Pause::RowCap) | None => break,
            }
        }
        if !out.is_empty() {
            if let Err(e) = reads_durable(reads).await {
                return e;
            }
        }
        if let Err(e) = flush(cw, &mut out, counters).await {
            return client_gone(e);
        }
        if let Some(bytes) = answered.resume.take() {
            if resume.send(bytes).await.is_err() {
                return Ending::new(SessionEndReason::ClientDisconnected, None);
            }
        }

        for r in answered.finished.drain(..) {
            if session.finished(r).await.is_err() {
                return Ending::new(
                    SessionEndReason::GatewayShutdown,
                    "session recorder stopped".to_string(),
                );
            }
        }
    }
}

/// Makes a read's decisions durable, or (reads only) queues them and hands
/// their pending append to the backend side, which holds the answers until
/// it is durable. With no room for another, this one is waited for here.
async fn write_ahead_of(
    session: &Session,
    write_ahead: &mut WriteAhead,
    reads: &tokio::sync::mpsc::Sender<PendingAppend>,
) -> Result<(), SessionError> {
    match session.commit_overlapping(write_ahead).await? {
        Committed::Durable => Ok(()),
        Committed::Reads(pending) => match reads.try_send(pending) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(pending) | TrySendError::Closed(pending)) => {
                Ok(pending.durable().await?)
            }
        },
    }
}

/// Waits until every read forwarded so far is durable: the backend's
/// answers to them (and anything after) may go to the client then.
async fn reads_durable(
    reads: &mut tokio::sync::mpsc::Receiver<PendingAppend>,
) -> Result<(), Ending> {
    while let Ok(pending) = reads.try_recv() {
        if let Err(e) = pending.durable().await {
            tracing::error!(error = %e, "evidence log write failed; ending the session");
            return Err(Ending::new(
                SessionEndReason::EvidenceLogFailed,
                e.to_string(),
            ));
        }
    }
    Ok(())
}

/// Writes what the gateway sends to finish a capped statement, then lets
/// the client's messages go on (in that order: nothing of the client's may
/// reach the backend before it).
async fn resumed<W: AsyncWrite + Unpin>(
    bw: &mut W,
    tracker: &Mutex<Tracker>,
    bytes: &[u8],
) -> Result<(), Ending> {
    if !bytes.is_empty() {
        crate::io::send(bw, bytes)
            .await
            .map_err(|e| Ending::new(SessionEndReason::BackendClosed, format!("backend: {e}")))?;
    }
    lock(tracker).barrier_lifted();
    Ok(())
}

/// Logs and stores columns a detector found sensitive (they protect
/// already), on a task of their own: the session may end meanwhile, and the
/// record must not end with it. A failure is logged: the column stays
/// protected until the gateway restarts, and the next result that shows it
/// after that finds it again.
fn record_found(tracker: &Mutex<Tracker>, found: Vec<gatehouse_core::SensitiveColumn>) {
    let columns = lock(tracker)
        .masking
        .discovery()
        .map(|d| d.columns().clone());
    let Some(columns) = columns else { return };
    tokio::spawn(async move {
        for column in found {
            match columns.record(&column).await {
                Ok(()) => tracing::info!(
                    connection = %column.connection,
                    column = %column.qualified(),
                    detector = %column.detector,
                    "sensitive column found"
                ),
                Err(e) => tracing::error!(
                    connection = %column.connection,
                    column = %column.qualified(),
                    "a sensitive column found could not be recorded: {e}"
                ),
            }
        }
    });
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
    counters.written(out.len());
    out.clear();
    Ok(())
}

fn client_gone(e: std::io::Error) -> Ending {
    Ending::new(SessionEndReason::ClientDisconnected, format!("client: {e}"))
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

#[cfg(test)]
mod tests;
