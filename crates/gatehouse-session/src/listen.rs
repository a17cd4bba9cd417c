//! The accept loop every listener of a socket protocol shares: callers
//! taken up to the gateway's connection limit (counted across listeners),
//! one task each, and at shutdown no new ones, while the open ones end.

use crate::Occupancy;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Accepts callers on `listener` until `shutdown` reads true, running
/// `serve(stream, peer, shutdown)` for each while it holds a connection
/// slot; then waits for the open ones. `name` words the log lines.
pub async fn accept_until_shutdown<F, Fut>(
    name: &'static str,
    listener: TcpListener,
    occupancy: &Arc<Occupancy>,
    max_connections: usize,
    mut shutdown: watch::Receiver<bool>,
    mut serve: F,
) where
    F: FnMut(TcpStream, SocketAddr, watch::Receiver<bool>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut tasks = tokio::task::JoinSet::new();
    let max = u32::try_from(max_connections).unwrap_or(u32::MAX);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let Some(slot) = occupancy.connection(max) else {
                        tracing::warn!(%peer, "{name} listener: connection limit reached; closing a new connection");
                        drop(stream);
                        continue;
                    };
                    let task = serve(stream, peer, shutdown.clone());
                    tasks.spawn(async move {
                        task.await;
                        drop(slot);
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "{name} listener: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            () = stopped(&mut shutdown) => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    while tasks.join_next().await.is_some() {}
}

/// Resolves once `shutdown` reads true (or its sender is gone).
pub async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}
