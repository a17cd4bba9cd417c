//! Hold mode: a statement waits in its session until its approval request is
//! decided, the hold times out, the client cancels it, or goes away.

use crate::gate::{Hold, HoldOutcome};
use crate::relay::{Counters, Ending};
use bytes::BytesMut;
use gatehouse_core::{ApprovalDesk, ApprovalState, SessionEndReason};
use std::sync::atomic::Ordering;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::watch;

/// What a held session reads from its client at most while it waits: beyond
/// it the gateway stops reading (TCP backpressure), so a held session cannot
/// make the gateway buffer without bound.
pub(crate) const HELD_READ_LIMIT: usize = 1 << 20;

fn outcome(state: ApprovalState) -> Option<HoldOutcome> {
    match state {
        ApprovalState::Pending => None,
        ApprovalState::Approved | ApprovalState::Used => Some(HoldOutcome::Approved),
        ApprovalState::Denied => Some(HoldOutcome::Denied),
        ApprovalState::Expired => Some(HoldOutcome::Expired),
    }
}

/// Waits for `hold`'s decision. Whatever the client sends meanwhile is kept
/// in `buf` (after the held statement), up to [`HELD_READ_LIMIT`]; a client
/// that disconnects ends the session, leaving its request pending.
pub(crate) async fn wait<R: AsyncRead + Unpin>(
    desk: &ApprovalDesk,
    hold: &Hold,
    cr: &mut R,
    buf: &mut BytesMut,
    counters: &Counters,
    cancelled: &mut watch::Receiver<u64>,
) -> Result<HoldOutcome, Ending> {
    // Only cancel requests from now on count.
    cancelled.borrow_and_update();
    let mut decided = desk.watch(&hold.id);
    // Decided before we started watching?
    match desk.get(&hold.id).await {
        Ok(r) => {
            if let Some(o) = outcome(r.state) {
                return Ok(o);
            }
        }
        Err(e) => {
            return Err(Ending::new(
                SessionEndReason::EvidenceLogFailed,
                e.to_string(),
            ))
        }
    }
    let deadline = tokio::time::sleep(hold.timeout);
    tokio::pin!(deadline);
    let mut watching = true;
    loop {
        tokio::select! {
            changed = decided.changed(), if watching => match changed {
                Ok(()) => {
                    if let Some(o) = (*decided.borrow_and_update()).and_then(outcome) {
                        return Ok(o);
                    }
                }
                // Nobody will tell us any more: only the deadline is left.
                Err(_) => watching = false,
            },
            _ = &mut deadline => return Ok(HoldOutcome::TimedOut),
            Ok(()) = cancelled.changed() => return Ok(HoldOutcome::Cancelled),
            read = cr.read_buf(buf), if buf.len() < HELD_READ_LIMIT => match read {
                Ok(0) => return Err(Ending::new(
                    SessionEndReason::ClientDisconnected,
                    format!("the client left while statement waited for approval request {}", hold.id),
                )),
                Ok(n) => {
                    counters.from_client.fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(e) => return Err(Ending::new(SessionEndReason::NetworkError, format!("client: {e}"))),
            },
        }
    }
}
