//! Before a pack is written: the running gateway is asked to sign a
//! checkpoint over everything it has logged, so that the last events can be
//! proven at once. When it cannot be asked, a pack that needs entries no
//! checkpoint covers yet is refused with how long to wait and why.

use crate::admin::AdminClient;
use anyhow::{anyhow, Error};
use std::path::Path;
use std::time::{Duration, SystemTime};

/// What the gateway said when asked for a checkpoint.
pub enum Sealing {
    /// It signed one (or had one) over this many entries.
    Sealed(u64),
    /// It was not asked, or did not answer: why, and its configured
    /// `checkpoint_interval` when known.
    NotAsked {
        /// Why no checkpoint was asked for.
        why: String,
        /// How often the gateway signs one by itself.
        interval: Option<Duration>,
    },
}

/// The default of `[evidence] checkpoint_interval`, for a log read without
/// its configuration.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

/// Asks the gateway of `config` (or at `server`) to sign a checkpoint now.
pub async fn ask(config: &Path, server: Option<&str>, interval: Option<Duration>) -> Sealing {
    let config = config.exists().then_some(config);
    let client = match AdminClient::new(config, server) {
        Ok(c) => c,
        Err(e) => {
            return Sealing::NotAsked {
                why: format!("{e:#}"),
                interval,
            }
        }
    };
    match client.seal_evidence().await {
        Ok(s) => Sealing::Sealed(s.tree_size),
        Err(e) => Sealing::NotAsked {
            why: format!("{e:#}"),
            interval,
        },
    }
}

/// The refusal for a period whose events from entry `covered` on (written
/// at `first_uncovered`) no signed checkpoint covers.
pub fn not_covered(
    covered: u64,
    first_uncovered: &str,
    sealing: &Sealing,
    now: SystemTime,
) -> Error {
    let head = format!(
        "the period's events from entry {covered} (written at {first_uncovered}) on are not yet \
         covered by a signed checkpoint{}, so the pack could not prove them",
        if covered == 0 {
            " (the log has none yet)"
        } else {
            ""
        }
    );
    let (why, interval) = match sealing {
        Sealing::Sealed(size) => {
            return anyhow!(
                "{head}: the gateway signed a checkpoint of {size} entries, but more were \
                 written before it was read; run the command again"
            )
        }
        Sealing::NotAsked { why, interval } => (why, interval),
    };
    let (interval, whose) = match interval {
        Some(i) => (*i, "its configured checkpoint_interval"),
        None => (
            DEFAULT_INTERVAL,
            "checkpoint_interval, 10 s unless configured",
        ),
    };
    let due = humantime::parse_rfc3339_weak(first_uncovered)
        .ok()
        .map(|t| t + interval);
    let wait = match due.map(|d| d.duration_since(now)) {
        Some(Ok(left)) => format!(
            "A running gateway signs one by itself within {} ({whose}) of an entry being \
             written: wait until {} (about {} s from now) and run this again",
            humantime::format_duration(interval),
            humantime::format_rfc3339_seconds(due.unwrap_or(now)),
            left.as_secs() + 1
        ),
        _ => format!(
            "A running gateway would have signed one within {} ({whose}) of the entry being \
             written, so it is not running or cannot write its log (its own log says which): \
             start it, since it signs the log's tail as it starts, then run this again",
            humantime::format_duration(interval)
        ),
    };
    anyhow!(
        "{head}.\nThe gateway could not be asked to sign one now: {why}.\n{wait}; \
         or end the period before {first_uncovered} with --to."
    )
}

#[cfg(test)]
mod tests {
    use super::{not_covered, Sealing};
    use std::time::Duration;

    #[test]
    fn the_refusal_says_how_long_to_wait_and_why() {
        let now = humantime::parse_rfc3339("2026-03-01T12:00:00Z").unwrap();
        let unreachable = Sealing::NotAsked {
            why: "cannot reach the gateway API at http://127.0.0.1:1".into(),
            interval: Some(Duration::from_secs(60)),
        };
        let soon = not_covered(5, "2026-03-01T11:59:30.250Z", &unreachable, now).to_string();
        assert!(
            soon.contains("from entry 5 (written at 2026-03-01T11:59:30.250Z)"),
            "{soon}"
        );
        assert!(soon.contains("cannot reach the gateway API"), "{soon}");
        assert!(
            soon.contains("wait until 2026-03-01T12:00:30Z (about 31 s from now)"),
            "{soon}"
        );
        assert!(soon.contains("--to"), "{soon}");
        let late = not_covered(0, "2026-03-01T10:00:00Z", &unreachable, now).to_string();
        assert!(late.contains("the log has none yet"), "{late}");
        assert!(
            late.contains("not running or cannot write its log"),
            "{late}"
        );
        assert!(late.contains("signs the log's tail as it starts"), "{late}");
        let unknown = Sealing::NotAsked {
            why: "--log names a file".into(),
            interval: None,
        };
        let text = not_covered(3, "2026-03-01T11:59:59Z", &unknown, now).to_string();
        assert!(text.contains("10 s unless configured"), "{text}");
        let raced = not_covered(3, "2026-03-01T11:59:59Z", &Sealing::Sealed(3), now).to_string();
        assert!(raced.contains("run the command again"), "{raced}");
    }
}
