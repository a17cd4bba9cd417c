//! Open connections and each identity's open sessions, counted across every
//! listener while they last, so that one caller cannot take them all.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
/// Open connections and sessions per identity, counted while they last.
#[derive(Default)]
pub struct Occupancy {
    connections: AtomicU32,
    /// Connections over the limit being told so (after their handshake).
    refusing: AtomicU32,
    /// The second (Unix) of the last over-capacity event written, and how
    /// many refusals were not written since: one event a second at most, so
    /// a flood of connections cannot flood the evidence log.
    last_refusal_event: std::sync::atomic::AtomicU64,
    unlogged_refusals: AtomicU32,
    sessions: Mutex<HashMap<String, u32>>,
}

/// Connections over the limit that get a handshake to be told why, at once;
/// beyond them a connection is closed with a bare error.
pub const MAX_REFUSING: u32 = 16;

/// One open connection (or one being refused); counted until dropped.
pub struct ConnectionSlot {
    occupancy: Arc<Occupancy>,
    refusing: bool,
}

/// One identity's open session; counted until dropped.
pub struct SessionSlot {
    occupancy: Arc<Occupancy>,
    subject: String,
}

impl Occupancy {
    /// A connection slot, or `None` when `max` are open.
    pub fn connection(self: &Arc<Self>, max: u32) -> Option<ConnectionSlot> {
        self.take(false, max)
    }

    /// A slot to refuse a connection over the limit with a handshake, or
    /// `None` when [`MAX_REFUSING`] are being refused.
    pub fn refusal(self: &Arc<Self>) -> Option<ConnectionSlot> {
        self.take(true, MAX_REFUSING)
    }

    /// Whether this over-capacity refusal gets its event (`Some(n)`: with
    /// `n` refusals since the last one that did), at most one a second.
    pub fn refusal_event(&self) -> Option<u32> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let last = self.last_refusal_event.swap(now, Ordering::AcqRel);
        if last == now {
            self.unlogged_refusals.fetch_add(1, Ordering::AcqRel);
            return None;
        }
        Some(self.unlogged_refusals.swap(0, Ordering::AcqRel))
    }

    fn counter(&self, refusing: bool) -> &AtomicU32 {
        if refusing {
            &self.refusing
        } else {
            &self.connections
        }
    }

    fn take(self: &Arc<Self>, refusing: bool, max: u32) -> Option<ConnectionSlot> {
        let taken = self
            .counter(refusing)
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            });
        taken.ok().map(|_| ConnectionSlot {
            occupancy: self.clone(),
            refusing,
        })
    }

    /// A session slot for `subject`, or how many it has open when `max` are.
    pub fn session(self: &Arc<Self>, subject: &str, max: u32) -> Result<SessionSlot, u32> {
        let mut sessions = lock(&self.sessions);
        let open = sessions.entry(subject.to_string()).or_insert(0);
        if *open >= max {
            return Err(*open);
        }
        *open += 1;
        Ok(SessionSlot {
            occupancy: self.clone(),
            subject: subject.to_string(),
        })
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.occupancy
            .counter(self.refusing)
            .fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drop for SessionSlot {
    fn drop(&mut self) {
        let mut sessions = lock(&self.occupancy.sessions);
        if let Some(open) = sessions.get_mut(&self.subject) {
            *open -= 1;
            if *open == 0 {
                sessions.remove(&self.subject);
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Counters only: a panic elsewhere cannot leave them half-updated.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_count_while_held_and_free_when_dropped() {
        let o = Arc::new(Occupancy::default());
        let a = o.connection(2).unwrap();
        let _b = o.connection(2).unwrap();
        assert!(o.connection(2).is_none());
        drop(a);
        assert!(o.connection(2).is_some());

        let s1 = o.session("ci", 1).unwrap();
        assert_eq!(o.session("ci", 1).err(), Some(1));
        assert!(o.session("agent", 1).is_ok());
        drop(s1);
        assert!(o.session("ci", 1).is_ok());
    }
}
