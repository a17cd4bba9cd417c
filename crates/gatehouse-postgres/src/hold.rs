//! Hold mode: a statement waits in its session until its approval request is
//! decided, the hold times out, the client cancels it, or goes away.

use crate::ending::Ending;
use bytes::BytesMut;
use gatehouse_core::{ApprovalId, ApprovalState, SessionEndReason};
use gatehouse_session::Session;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::watch;

/// A statement that waits in its session for a decision (hold mode).
#[derive(Clone, Debug)]
pub(crate) struct Hold {
    /// The request it waits for.
    pub(crate) id: ApprovalId,
    /// How long it waits.
    pub(crate) timeout: std::time::Duration,
    /// Told to the client at once (a NoticeResponse).
    pub(crate) notice: bytes::BytesMut,
}

/// How a hold ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HoldOutcome {
    /// Approved: decide the statement again, which takes the approval.
    Approved,
    /// Denied by an approver.
    Denied,
    /// The request expired.
    Expired,
    /// Nobody decided within the hold timeout; the request stays pending.
    TimedOut,
    /// The client cancelled (CancelRequest, Ctrl-C in psql); the request stays pending.
    Cancelled,
}

/// What a held session reads from its client at most while it waits: beyond
/// it the gateway stops reading (TCP backpressure), so a held session cannot
/// make the gateway buffer without bound.
pub(crate) const HELD_READ_LIMIT: usize = 1 << 20;

fn outcome(state: Option<ApprovalState>) -> HoldOutcome {
    match state {
        Some(ApprovalState::Approved | ApprovalState::Used) => HoldOutcome::Approved,
        Some(ApprovalState::Denied) => HoldOutcome::Denied,
        Some(ApprovalState::Expired) => HoldOutcome::Expired,
        Some(ApprovalState::Pending) | None => HoldOutcome::TimedOut,
    }
}

/// Waits for `hold`'s decision. Whatever the client sends meanwhile is kept
/// in `buf` (after the held statement), up to [`HELD_READ_LIMIT`]; a client
/// that disconnects ends the session, leaving its request pending.
pub(crate) async fn wait<R: AsyncRead + Unpin>(
    session: &Session,
    hold: &Hold,
    cr: &mut R,
    buf: &mut BytesMut,
    cancelled: &mut watch::Receiver<u64>,
) -> Result<HoldOutcome, Ending> {
    // Only cancel requests from now on count.
    cancelled.borrow_and_update();
    // Created once: reads and cancels below must not restart the wait.
    let decided = session.await_decision(&hold.id, hold.timeout);
    tokio::pin!(decided);
    loop {
        tokio::select! {
            d = &mut decided => return match d {
                Ok(state) => Ok(outcome(state)),
                Err(e) => Err(Ending::new(SessionEndReason::EvidenceLogFailed, e.to_string())),
            },
            Ok(()) = cancelled.changed() => return Ok(HoldOutcome::Cancelled),
            read = cr.read_buf(buf), if buf.len() < HELD_READ_LIMIT => match read {
                Ok(0) => return Err(Ending::new(
                    SessionEndReason::ClientDisconnected,
                    format!("the client left while statement waited for approval request {}", hold.id),
                )),
                Ok(n) => session.counters().read(n),
                Err(e) => return Err(Ending::new(SessionEndReason::NetworkError, format!("client: {e}"))),
            },
        }
    }
}
