//! A log file as the `audit` commands read it: read-only, a page at a time,
//! whatever its size. Verification comes first and decodes each entry once
//! (readers may follow along); later passes read the rows again in storage
//! order, which a clean log guarantees is sequence order.

use super::segments::{FoundSegments, SegmentPlaces};
use anyhow::{bail, Context, Result};
use gatehouse_core::{EvidenceStore, LogRow};
use gatehouse_evidence::{
    for_each_row, split_notes, verify_store, whole_notes_end, whole_utf8, Checkpoint, Head,
    LogSource, Report, StoredCheckpoint, VerifierKey,
};
use gatehouse_store::{SegmentRecord, SqliteEvidenceStore};
use std::io::{IsTerminal, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// An evidence log file, its sealed segments and the witness files holding
/// copies of its checkpoints; or another node's log as copied to a shared
/// store.
pub struct LogFile {
    /// What it is, for messages: the file, or the node's copy.
    path: PathBuf,
    store: Box<dyn EvidenceStore>,
    /// The sealed segments' records, oldest first.
    records: Vec<SegmentRecord>,
    /// Their files (none for a copy in a shared store, which holds every
    /// entry).
    segments: Option<FoundSegments>,
    /// Their rows the store still holds, awaiting removal.
    awaiting_purge: Vec<(i64, i64)>,
    witnessed: Vec<StoredCheckpoint>,
    /// Draw a progress line on a terminal (not inside the gateway).
    progress: bool,
}

/// What a pass over the whole log read, and how fast.
pub struct Pass {
    /// The verification report.
    pub report: Report,
    /// How long it took.
    pub took: Duration,
}

impl Pass {
    /// Entries read per second.
    pub fn rate(&self) -> f64 {
        self.report.entries as f64 / self.took.as_secs_f64().max(1e-6)
    }
}

impl LogFile {
    /// Opens the log at `path` (read-only), finds its sealed segments in
    /// `places` and reads the witness files.
    pub async fn open(path: &Path, witnesses: &[PathBuf], places: &SegmentPlaces) -> Result<Self> {
        // Witness copies first: the gateway publishes a checkpoint only
        // after storing it, so every copy read now is in the snapshot taken
        // after (read the other way round, one published in between would
        // look like a cut-off log).
        let mut witnessed = Vec::new();
        for w in witnesses {
            let bytes = std::fs::read(w)
                .with_context(|| format!("reading the witness file {}", w.display()))?;
            let raw = bytes.len();
            let text = whole_utf8(bytes).ok_or_else(|| {
                anyhow::anyhow!("{}: not a witness file (not UTF-8)", w.display())
            })?;
            let whole = whole_notes_end(&text);
            if whole < raw {
                eprintln!(
                    "note: the witness file {} ends in {} bytes of a torn write (a crash while a \
                     checkpoint was appended): they are not a checkpoint and are left out",
                    w.display(),
                    raw - whole
                );
            }
            let notes = split_notes(&text[..whole]);
            if notes.is_empty() {
                bail!("{}: holds no checkpoints", w.display());
            }
            witnessed.extend(notes.into_iter().map(|note| StoredCheckpoint {
                source: format!("witness {}", w.display()),
                note,
            }));
        }
        let store = SqliteEvidenceStore::open_read_only(path)
            .await
            .with_context(|| format!("reading the evidence log {}", path.display()))?;
        // Several passes follow: each must see the same log, however the
        // gateway writes, seals and archives meanwhile.
        store.hold_snapshot().await?;
        let records = store.segments().await?;
        let awaiting_purge = records.iter().filter_map(|s| s.awaiting_purge()).collect();
        let segments = places.find(&records)?;
        Ok(Self {
            path: path.to_path_buf(),
            store: Box::new(store),
            records,
            segments: Some(segments),
            awaiting_purge,
            witnessed,
            progress: true,
        })
    }

    /// Node `node`'s log as copied to a shared store (every entry, its
    /// checkpoints; no segments, no witness files).
    pub fn replica(log: gatehouse_store::ReplicaLog) -> Self {
        Self {
            path: PathBuf::from(format!("node {}'s log in the shared store", log.node())),
            store: Box::new(log),
            records: Vec::new(),
            segments: None,
            awaiting_purge: Vec::new(),
            witnessed: Vec::new(),
            progress: true,
        }
    }

    /// The same log, read without a progress line (inside the gateway,
    /// whose standard error is its own log).
    pub fn without_progress(mut self) -> Self {
        self.progress = false;
        self
    }

    /// Where each checkpoint copy besides the log's own came from (the
    /// witness files), with its note.
    pub fn witnessed(&self) -> impl Iterator<Item = (&str, &str)> {
        self.witnessed
            .iter()
            .map(|w| (w.source.as_str(), w.note.as_str()))
    }

    /// The highest entry number stored, if any.
    pub async fn last_seq(&self) -> Result<Option<u64>> {
        Ok(self.store.last_seq().await?)
    }

    /// Verifies every entry and checkpoint against `key`, with a progress
    /// line on a terminal; `each` reads along (every row, decoded when it
    /// decodes).
    pub async fn verify(
        &self,
        key: &VerifierKey,
        mut each: impl FnMut(Option<Head>),
    ) -> Result<Pass> {
        let total = self.store.last_seq().await?.map_or(0, |s| s + 1);
        let mut progress = Progress::new("verifying", total);
        progress.terminal &= self.progress;
        let start = Instant::now();
        let report = verify_store(self.source(), self.witnessed.clone(), key, |e| {
            progress.tick();
            each(e);
        })
        .await
        .with_context(|| format!("reading the evidence log {}", self.path.display()))?;
        progress.done();
        Ok(Pass {
            report,
            took: start.elapsed(),
        })
    }

    /// [`LogFile::verify`], failing unless the log is intact.
    pub async fn verified(
        &self,
        key: &VerifierKey,
        each: impl FnMut(Option<Head>),
    ) -> Result<Pass> {
        let pass = self.verify(key, each).await?;
        if !pass.report.is_clean() {
            bail!(
                "the evidence log does not verify ({} finding(s)); run `gatehouse audit verify` for details",
                pass.report.findings.len() as u64 + pass.report.more_findings
            );
        }
        Ok(pass)
    }

    /// Gives `each` every row in storage order until it breaks (after
    /// [`LogFile::verified`]: the entries in sequence order).
    pub async fn rows(&self, each: impl FnMut(&LogRow) -> ControlFlow<()>) -> Result<()> {
        for_each_row(self.source(), each)
            .await
            .with_context(|| format!("reading the evidence log {}", self.path.display()))
    }

    fn source(&self) -> LogSource<'_> {
        match &self.segments {
            Some(segments) => LogSource {
                segments,
                store: self.store.as_ref(),
                awaiting_purge: &self.awaiting_purge,
            },
            None => LogSource::store(self.store.as_ref()),
        }
    }

    /// The sealed segments' records, oldest first.
    pub async fn segment_records(&self) -> Result<Vec<SegmentRecord>> {
        Ok(self.records.clone())
    }

    /// Every checkpoint that verifies with `key`, smallest first, with its note.
    pub async fn checkpoints(&self, key: &VerifierKey) -> Result<Vec<(Checkpoint, String)>> {
        let stored = self.store.checkpoints().await?;
        let mut all: Vec<(Checkpoint, String)> = stored
            .into_iter()
            .chain(self.witnessed.iter().map(|w| w.note.clone()))
            .filter_map(|note| key.open(&note).ok().map(|cp| (cp, note)))
            .collect();
        all.sort_by_key(|(cp, _)| cp.size);
        Ok(all)
    }

    /// The largest checkpoint that verifies with `key`.
    pub async fn latest_checkpoint(
        &self,
        key: &VerifierKey,
    ) -> Result<Option<(Checkpoint, String)>> {
        Ok(self.checkpoints(key).await?.pop())
    }
}

/// A progress line on standard error, redrawn a few times a second, only
/// when standard error is a terminal (never in a pipe or a log file).
pub struct Progress {
    what: &'static str,
    total: u64,
    done: u64,
    start: Instant,
    drawn: Option<Instant>,
    terminal: bool,
}

impl Progress {
    /// For `total` entries (an estimate: the highest stored number).
    pub fn new(what: &'static str, total: u64) -> Self {
        Self {
            what,
            total,
            done: 0,
            start: Instant::now(),
            drawn: None,
            terminal: std::io::stderr().is_terminal(),
        }
    }

    /// One more entry.
    pub fn tick(&mut self) {
        self.done += 1;
        if !self.terminal || !self.done.is_multiple_of(4096) {
            return;
        }
        let now = Instant::now();
        if self
            .drawn
            .is_some_and(|d| now - d < Duration::from_millis(200))
        {
            return;
        }
        self.drawn = Some(now);
        let rate = self.done as f64 / (now - self.start).as_secs_f64().max(1e-6);
        let pct = if self.total > 0 {
            (self.done as f64 * 100.0 / self.total as f64).min(100.0)
        } else {
            0.0
        };
        let width = 30usize;
        let filled = (pct / 100.0 * width as f64) as usize;
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r{} [{}{}] {:>5.1}% {}/{} entries, {:.0}/s ",
            self.what,
            "#".repeat(filled),
            " ".repeat(width - filled),
            pct,
            self.done,
            self.total,
            rate
        );
        let _ = err.flush();
    }

    /// Clears the line.
    pub fn done(&mut self) {
        if self.terminal && self.drawn.is_some() {
            let _ = write!(std::io::stderr().lock(), "\r{:80}\r", "");
        }
    }
}
