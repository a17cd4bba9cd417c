//! Cancel keys: the client gets a key of the gateway's, mapped to the
//! backend's, so a client's CancelRequest reaches the right backend process
//! without revealing backend details.

use crate::codec::startup;
use bytes::BytesMut;
use rand::RngCore;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use subtle::ConstantTimeEq;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::watch;

#[derive(Clone)]
struct Entry {
    secret: i32,
    host: String,
    port: u16,
    backend_pid: i32,
    backend_secret: i32,
    /// Counts the session's cancel requests: a statement the gateway holds
    /// (waiting for approval) is cancelled by the gateway itself.
    cancelled: Arc<watch::Sender<u64>>,
}

/// The live sessions' cancel keys.
#[derive(Clone, Default)]
pub struct CancelRegistry {
    entries: Arc<Mutex<HashMap<i32, Entry>>>,
}

/// A registered key; dropping it unregisters the session.
pub struct CancelKey {
    registry: CancelRegistry,
    /// The pid given to the client.
    pub pid: i32,
    /// The secret given to the client.
    pub secret: i32,
    cancelled: Arc<watch::Sender<u64>>,
}

impl CancelKey {
    /// Changes whenever the client asks to cancel.
    pub fn cancelled(&self) -> watch::Receiver<u64> {
        self.cancelled.subscribe()
    }
}

impl Drop for CancelKey {
    fn drop(&mut self) {
        if let Ok(mut m) = self.registry.entries.lock() {
            m.remove(&self.pid);
        }
    }
}

impl CancelRegistry {
    /// Registers a session's backend key and returns the key to give the client.
    pub fn register(&self, host: &str, port: u16, backend: (i32, i32)) -> CancelKey {
        let mut rng = rand::rngs::OsRng;
        let secret = rng.next_u32() as i32;
        // A poisoned lock only means another session panicked mid-insert; the map is still valid.
        let mut m = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let pid = loop {
            // Positive, non-zero, unused.
            let pid = (rng.next_u32() & 0x7fff_ffff) as i32;
            if pid != 0 && !m.contains_key(&pid) {
                break pid;
            }
        };
        let cancelled = Arc::new(watch::channel(0).0);
        m.insert(
            pid,
            Entry {
                secret,
                host: host.to_string(),
                port,
                backend_pid: backend.0,
                backend_secret: backend.1,
                cancelled: cancelled.clone(),
            },
        );
        CancelKey {
            registry: self.clone(),
            pid,
            secret,
            cancelled,
        }
    }

    /// Forwards a client's cancel request to the backend. Returns whether the
    /// key matched a live session.
    pub async fn cancel(&self, pid: i32, secret: i32) -> bool {
        let entry = {
            let m = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            m.get(&pid).cloned()
        };
        let Some(e) = entry else { return false };
        if !bool::from(e.secret.to_be_bytes().ct_eq(&secret.to_be_bytes())) {
            return false;
        }
        e.cancelled.send_modify(|n| *n += 1);
        if e.backend_pid == 0 {
            return false;
        }
        let mut out = BytesMut::with_capacity(16);
        startup::cancel_request(&mut out, e.backend_pid, e.backend_secret);
        match TcpStream::connect((e.host.as_str(), e.port)).await {
            Ok(mut s) => {
                if let Err(err) = s.write_all(&out).await {
                    tracing::warn!(error = %err, "could not send cancel request to backend");
                }
                let _ = s.shutdown().await;
                true
            }
            Err(err) => {
                tracing::warn!(error = %err, "could not reach backend to cancel");
                true
            }
        }
    }
}
