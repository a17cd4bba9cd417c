//! Notifications between the nodes sharing the store.
//!
//! A write other nodes cache (an approval's, a token's revocation) or act
//! on (a published evidence checkpoint, which they witness) sends
//! `NOTIFY gatehouse_changes` in its transaction (delivered at commit).
//! Each store handle listens on a connection of its own and counts the
//! notifications in a `watch` channel the gateway waits on. Notifications
//! sent while the listener was away are lost: after reconnecting it counts
//! one more (something may have changed), and the gateway polls anyway.

use crate::unavailable;
use gatehouse_core::StoreError;
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::AbortHandle;

/// The channel every node listens and notifies on.
const CHANNEL: &str = "gatehouse_changes";

/// The first wait before reconnecting, doubled up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What changed (the notification's payload; listeners do not read it).
#[derive(Clone, Copy, Debug)]
pub(super) enum Change {
    Approval,
    Token,
    /// A node published an evidence checkpoint: witnesses may cosign it.
    Checkpoint,
}

impl Change {
    fn as_str(self) -> &'static str {
        match self {
            Self::Approval => "approval",
            Self::Token => "token",
            Self::Checkpoint => "checkpoint",
        }
    }
}

/// Tells the other nodes, when the transaction on `conn` commits, that
/// something of `kind` changed.
pub(super) async fn notify(conn: &mut PgConnection, kind: Change) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(kind.as_str())
        .execute(conn)
        .await
        .map_err(unavailable)?;
    Ok(())
}

/// The listening task of a store handle: counts notifications until
/// aborted (when the handle is closed or dropped).
pub(super) struct Listening {
    pub(super) changes: watch::Receiver<u64>,
    task: AbortHandle,
}

impl Listening {
    /// Starts listening on a connection of `pool` (the listener's own).
    /// Listening when this returns: a change committed after it is counted.
    pub(super) async fn start(pool: PgPool) -> Result<Self, sqlx::Error> {
        let listener = listen(&pool).await?;
        let (tx, changes) = watch::channel(0);
        let task = tokio::spawn(run(pool, listener, tx)).abort_handle();
        Ok(Self { changes, task })
    }

    /// Stops the task (at its next await).
    pub(super) fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn listen(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    // A lost connection ends `try_recv` with `None`; reconnecting is
    // `run`'s, with a backoff and a count for what was missed.
    listener.eager_reconnect(false);
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

fn bump(tx: &watch::Sender<u64>) {
    tx.send_modify(|n| *n = n.wrapping_add(1));
}

async fn run(pool: PgPool, mut listener: PgListener, tx: watch::Sender<u64>) {
    loop {
        loop {
            match listener.try_recv().await {
                Ok(Some(_)) => bump(&tx),
                Ok(None) => {
                    tracing::warn!("lost the store's notification connection; reconnecting");
                    break;
                }
                Err(sqlx::Error::PoolClosed) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "the store's notification connection failed; reconnecting");
                    break;
                }
            }
        }
        drop(listener);
        let mut backoff = FIRST_BACKOFF;
        listener = loop {
            tokio::time::sleep(backoff).await;
            match listen(&pool).await {
                Ok(l) => break l,
                Err(sqlx::Error::PoolClosed) => return,
                Err(e) => {
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    tracing::warn!(
                        error = %e,
                        retry_in = ?backoff,
                        "cannot listen for the store's notifications"
                    );
                }
            }
        };
        tracing::info!("listening for the store's notifications again");
        // Notifications sent while away are lost: wake the waiters once.
        bump(&tx);
    }
}
