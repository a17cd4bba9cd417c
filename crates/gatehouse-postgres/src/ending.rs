//! How a session's relay ended, and the shutdown signal every stage watches.

use gatehouse_core::SessionEndReason;
use tokio::sync::watch;

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

/// Completes once `rx` reads true (or its sender is gone). The watch guard is
/// dropped inside, so the future stays `Send`.
pub(crate) async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}
