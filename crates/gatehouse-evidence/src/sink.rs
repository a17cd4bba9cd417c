//! Live sinks: each configured sink receives every entry, in order, as it
//! is committed.
//!
//! A sink reads from the store, never from the writer's queue, so a slow or
//! absent sink cannot hold up the data path and cannot lose anything: its
//! cursor (the next sequence number to deliver) is saved in a file after
//! each delivered batch, and delivery resumes from there after an outage or
//! a restart. A batch is retried until it is taken; a crash between a
//! delivery and its cursor save repeats that one batch, with the same
//! sequence numbers, which is how a receiver recognises it.

use crate::export::{Exported, Format};
use crate::merkle::leaf_hash;
use crate::{Entry, EvidenceError};
use async_trait::async_trait;
use gatehouse_core::EvidenceStore;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// One entry as a sink receives it.
pub struct SinkEvent {
    /// The decoded entry.
    pub entry: Entry,
    /// The entry in the sink's format, one line.
    pub line: String,
    /// Whether the event records a refusal or failure (for severities).
    pub failure: bool,
    /// The entry's leaf hash, hex.
    pub leaf_hash: String,
}

/// Where a sink's batches go: an HTTP endpoint, a syslog server.
#[async_trait]
pub trait Sink: Send + 'static {
    /// What the sink is, for logs (never a secret).
    fn describe(&self) -> String;
    /// Delivers a batch; `Ok` only once the receiver has taken all of it.
    async fn deliver(&mut self, batch: &[SinkEvent]) -> Result<(), String>;
}

/// How one sink is fed.
pub struct SinkSettings {
    /// The sink's configured name (logs, cursor).
    pub name: String,
    /// The format of each event's line.
    pub format: Format,
    /// Entries per delivery at most.
    pub batch_max: usize,
    /// The file holding the next sequence number to deliver, and the leaf
    /// hash of the entry before it (which ties the cursor to this log).
    pub cursor: PathBuf,
}

const FIRST_RETRY: Duration = Duration::from_millis(250);
const LONGEST_RETRY: Duration = Duration::from_secs(30);

/// Reads the sink's cursor and starts feeding it from `store` as `committed`
/// (from [`crate::EvidenceLog::committed`]) grows. The task ends once the log
/// has stopped and everything committed was delivered; stopping the gateway
/// waits for that only so long, and whatever is left goes out at the next start.
pub async fn spawn_sink(
    sink: Box<dyn Sink>,
    settings: SinkSettings,
    store: Arc<dyn EvidenceStore>,
    committed: watch::Receiver<u64>,
) -> Result<JoinHandle<()>, EvidenceError> {
    let cursor = read_cursor(&settings).await?;
    let next = check_cursor(&settings, store.as_ref(), cursor).await?;
    let feed = Feed {
        sink,
        settings,
        store,
        next,
        sessions: crate::export::SessionIndex::default(),
    };
    Ok(tokio::spawn(feed.run(committed)))
}

/// A saved position: the next sequence number and the leaf hash of the
/// entry before it (none at the start).
struct Cursor {
    next: u64,
    after: Option<String>,
}

async fn read_cursor(settings: &SinkSettings) -> Result<Cursor, EvidenceError> {
    let path = &settings.cursor;
    match tokio::fs::read_to_string(path).await {
        Ok(text) => {
            let mut parts = text.split_whitespace();
            let next = parts.next().and_then(|n| n.parse().ok());
            let after = parts.next().map(str::to_string);
            match next {
                Some(next) if (next == 0) == after.is_none() => Ok(Cursor { next, after }),
                _ => Err(EvidenceError::Store(format!(
                    "sink {:?}: the cursor file {} is not a saved position ({:?}); \
                     delete it to deliver the whole log again",
                    settings.name,
                    path.display(),
                    text.trim()
                ))),
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Cursor {
            next: 0,
            after: None,
        }),
        Err(e) => Err(EvidenceError::Store(format!(
            "sink {:?}: cannot read its cursor {}: {e}",
            settings.name,
            path.display()
        ))),
    }
}

/// Refuses a cursor saved for another log (the log file was replaced): it
/// would skip this log's first entries without a word.
async fn check_cursor(
    settings: &SinkSettings,
    store: &dyn EvidenceStore,
    cursor: Cursor,
) -> Result<u64, EvidenceError> {
    let Some(want) = cursor.after else {
        // A new sink: from the first entry the store holds. Entries sealed
        // into segments before it are not in the store to read.
        let first = store
            .entries_from(0, 1)
            .await
            .map_err(|e| EvidenceError::Store(e.to_string()))?
            .first()
            .map_or(0, |r| u64::try_from(r.seq).unwrap_or(0));
        if first > 0 {
            tracing::warn!(
                sink = %settings.name,
                first,
                "a new sink starts at the first entry of the live log; entries 0 to {} are sealed \
                 in segments: deliver them with `gatehouse audit export --until`",
                first - 1
            );
        }
        return Ok(first);
    };
    let rows = store
        .entries_from(cursor.next - 1, 1)
        .await
        .map_err(|e| EvidenceError::Store(e.to_string()))?;
    let found = rows.first().map(|r| hex::encode(leaf_hash(&r.bytes)));
    let first_live = rows.first().map(|r| r.seq);
    if found.as_deref() != Some(want.as_str())
        && first_live.is_some_and(|s| s > (cursor.next - 1) as i64)
    {
        return Err(EvidenceError::Store(format!(
            "sink {:?}: its saved position {} (entry {}) is sealed in a segment now (the live \
             log starts at entry {}): deliver the entries from {} on with `gatehouse audit export \
             --since`, then delete the file to go on from the live log",
            settings.name,
            settings.cursor.display(),
            cursor.next - 1,
            first_live.unwrap_or_default(),
            cursor.next,
        )));
    }
    if found.as_deref() != Some(want.as_str()) {
        return Err(EvidenceError::Store(format!(
            "sink {:?}: its saved position {} (entry {} of hash {want}) is not in this evidence log, \
             which was replaced since; delete the file to deliver this log from its first live entry",
            settings.name,
            settings.cursor.display(),
            cursor.next - 1,
        )));
    }
    Ok(cursor.next)
}

struct Feed {
    sink: Box<dyn Sink>,
    settings: SinkSettings,
    store: Arc<dyn EvidenceStore>,
    /// The next sequence number to deliver.
    next: u64,
    /// The sessions whose start this sink has read (since it started).
    sessions: crate::export::SessionIndex,
}

impl Feed {
    async fn run(mut self, mut committed: watch::Receiver<u64>) {
        let mut open = true;
        let mut delay = FIRST_RETRY;
        loop {
            let target = *committed.borrow_and_update();
            if self.next >= target {
                if !open || committed.changed().await.is_err() {
                    if !open || self.next >= *committed.borrow() {
                        return;
                    }
                    open = false;
                }
                continue;
            }
            match self.step(target).await {
                Ok(()) => delay = FIRST_RETRY,
                Err(Stop) => return,
                Err(Retry(why)) => {
                    tracing::warn!(
                        sink = %self.settings.name,
                        to = %self.sink.describe(),
                        next = self.next,
                        error = %why,
                        retry_in = ?delay,
                        "could not deliver evidence events to a sink; retrying from the same entry"
                    );
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(LONGEST_RETRY);
                }
            }
        }
    }

    /// Delivers the next batch (below `target`) and saves the cursor.
    async fn step(&mut self, target: u64) -> Result<(), Failure> {
        let want = ((target - self.next) as usize).min(self.settings.batch_max);
        let rows = self
            .store
            .entries_from(self.next, want)
            .await
            .map_err(|e| Retry(e.to_string()))?;
        let mut batch = Vec::with_capacity(rows.len());
        for (expected, row) in (self.next..).zip(&rows) {
            // Found by number, each one once: a gap is never skipped.
            if u64::try_from(row.seq).ok() != Some(expected) {
                tracing::error!(sink = %self.settings.name, expected, found = row.seq,
                    "the evidence log holds no entry {expected} where this sink goes on; it stops rather than skip it: run `gatehouse audit verify`");
                return Err(Stop);
            }
            let entry = match Entry::decode(&row.bytes) {
                Ok(e) => e,
                Err(e) => {
                    // The log verified at start; an undecodable entry means it
                    // was changed since. Skipping it would hide that.
                    tracing::error!(sink = %self.settings.name, position = row.position, error = %e,
                        "an evidence log entry cannot be read; this sink stops: run `gatehouse audit verify`");
                    return Err(Stop);
                }
            };
            let exported = Exported {
                entry: &entry,
                bytes: &row.bytes,
                checkpoint: None,
                session: self.sessions.of(&entry),
            };
            let line = exported.line(self.settings.format);
            let failure = exported.is_failure();
            self.sessions.remember(&entry);
            batch.push(SinkEvent {
                line,
                failure,
                leaf_hash: hex::encode(leaf_hash(&row.bytes)),
                entry,
            });
        }
        let Some((last, last_leaf)) = batch.last().map(|e| (e.entry.seq, e.leaf_hash.clone()))
        else {
            return Err(Retry(format!("the store holds no entry {} yet", self.next)));
        };
        self.sink.deliver(&batch).await.map_err(Retry)?;
        self.next = last + 1;
        save_cursor(self.settings.cursor.clone(), self.next, last_leaf)
            .await
            .map_err(|e| {
                Retry(format!(
                    "delivered up to entry {last} but cannot save the cursor {}: {e}",
                    self.settings.cursor.display()
                ))
            })
    }
}

enum Failure {
    /// Try the same entries again later.
    Retry(String),
    /// The sink cannot go on.
    Stop,
}
use Failure::{Retry, Stop};

/// Replaces the cursor file atomically (write, sync, rename).
async fn save_cursor(path: PathBuf, next: u64, after: String) -> std::io::Result<()> {
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let tmp = path.with_extension("tmp");
        let mut f = std::fs::File::create(&tmp)?;
        writeln!(f, "{next} {after}")?;
        f.sync_data()?;
        std::fs::rename(&tmp, &path)
    })
    .await
    .map_err(std::io::Error::other)?
}
