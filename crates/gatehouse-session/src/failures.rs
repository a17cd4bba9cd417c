//! Failed logins counted per client address: past a limit in a minute, the
//! address's further logins are refused before any credential is checked,
//! so one caller cannot make the gateway verify tokens without end (each
//! costs a store lookup or a signature check, and can fetch an issuer's
//! keys) or try credentials at the gateway's speed.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The window the limit counts in.
const WINDOW: Duration = Duration::from_secs(60);
/// Addresses remembered at most: past it the quiet ones are forgotten (at
/// most once a second), and while all are busy a new address is not
/// counted (the limiter gives way rather than memory).
const ADDRESSES_KEPT: usize = 10_000;
/// How often a full map is searched for quiet addresses at most.
const PRUNE_EVERY: Duration = Duration::from_secs(1);

/// Failed logins of the last minute, by client address.
#[derive(Default)]
pub(crate) struct FailedLogins {
    limit: Option<u32>,
    by_address: Mutex<Addresses>,
}

#[derive(Default)]
struct Addresses {
    map: HashMap<IpAddr, Failures>,
    pruned_at: Option<Instant>,
}

/// The address a limit counts under: IPv6 by its /64 (one host's block),
/// so a caller cannot step through addresses to escape it.
fn counted_as(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
    }
}

#[derive(Default)]
struct Failures {
    at: VecDeque<Instant>,
    /// Refusals since the last one written to the evidence log (one a
    /// window at most is written, so an attack cannot flood the log).
    unlogged: u32,
    logged_at: Option<Instant>,
}

/// An address over the limit.
pub(crate) struct Blocked {
    /// The limit.
    pub(crate) limit: u32,
    /// Whether this refusal is written to the evidence log, with how many
    /// before it were not.
    pub(crate) log: Option<u32>,
}

impl FailedLogins {
    /// At most `limit` failed logins a minute per address (`None`: no limit).
    pub(crate) fn new(limit: Option<u32>) -> Self {
        Self {
            limit,
            by_address: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Addresses> {
        // Counters only: a panic elsewhere cannot leave them half-updated.
        self.by_address.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `ip` has failed `limit` times in the last minute.
    pub(crate) fn blocked(&self, ip: IpAddr, now: Instant) -> Option<Blocked> {
        let limit = self.limit?;
        let mut addresses = self.lock();
        let f = addresses.map.get_mut(&counted_as(ip))?;
        while f
            .at
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            f.at.pop_front();
        }
        if f.at.len() < limit as usize {
            return None;
        }
        let log = match f.logged_at {
            Some(t) if now.duration_since(t) < WINDOW => {
                f.unlogged += 1;
                None
            }
            _ => {
                f.logged_at = Some(now);
                Some(std::mem::take(&mut f.unlogged))
            }
        };
        Some(Blocked { limit, log })
    }

    /// Counts a failed login from `ip`.
    pub(crate) fn failed(&self, ip: IpAddr, now: Instant) {
        if self.limit.is_none() {
            return;
        }
        let ip = counted_as(ip);
        let mut a = self.lock();
        if a.map.len() >= ADDRESSES_KEPT && !a.map.contains_key(&ip) {
            if a.pruned_at
                .is_none_or(|t| now.duration_since(t) >= PRUNE_EVERY)
            {
                a.pruned_at = Some(now);
                a.map
                    .retain(|_, f| f.at.back().is_some_and(|t| now.duration_since(*t) < WINDOW));
            }
            if a.map.len() >= ADDRESSES_KEPT {
                return;
            }
        }
        a.map.entry(ip).or_default().at.push_back(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_blocked_after_its_limit_and_freed_a_minute_later() {
        let f = FailedLogins::new(Some(2));
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let t0 = Instant::now();
        assert!(f.blocked(a, t0).is_none());
        f.failed(a, t0);
        f.failed(a, t0);
        let first = f.blocked(a, t0).expect("blocked at the limit");
        assert_eq!(
            (first.limit, first.log),
            (2, Some(0)),
            "the first refusal is logged"
        );
        assert_eq!(
            f.blocked(a, t0).unwrap().log,
            None,
            "the next ones are counted"
        );
        assert!(
            f.blocked(b, t0).is_none(),
            "another address is not affected"
        );
        let later = t0 + WINDOW;
        assert!(
            f.blocked(a, later).is_none(),
            "a minute later the address is free"
        );
        assert!(FailedLogins::new(None).blocked(a, t0).is_none());
    }

    #[test]
    fn ipv6_addresses_count_by_their_64_block() {
        let f = FailedLogins::new(Some(2));
        let t0 = Instant::now();
        f.failed("2001:db8:1:2::1".parse().unwrap(), t0);
        f.failed("2001:db8:1:2::ffff".parse().unwrap(), t0);
        assert!(f.blocked("2001:db8:1:2::42".parse().unwrap(), t0).is_some());
        assert!(f.blocked("2001:db8:1:3::1".parse().unwrap(), t0).is_none());
    }
}
