//! Reading a log where it is stored, a page at a time: verification and
//! every reader after it (exports, proofs, packs) keep one page in memory.

use super::{Finding, ReadRow, Report, StoredCheckpoint, Verifier};
use crate::entry::Head;
use crate::note::VerifierKey;
use crate::segment::{SegmentHeader, SegmentReader};
use crate::EvidenceError;
use gatehouse_core::{EvidenceStore, LogRow};
use std::ops::ControlFlow;
use std::path::PathBuf;

/// Rows read per page.
pub const PAGE: usize = 4096;

fn unavailable(e: gatehouse_core::StoreError) -> EvidenceError {
    EvidenceError::Store(e.to_string())
}

/// The sealed segments of a log, in order, as a reader reaches them: one
/// kept elsewhere is brought here when it is reached and let go after, so
/// a pass over a log of many archived segments holds one at a time.
#[async_trait::async_trait]
pub trait SegmentFiles: Send + Sync {
    /// How many there are.
    fn count(&self) -> usize;
    /// Segment `i`'s file (0 is the oldest), brought here if it must be.
    async fn open(&self, i: usize) -> Result<PathBuf, EvidenceError>;
    /// The reader is done with segment `i` (a copy brought here can go).
    async fn done(&self, i: usize);
    /// The SHA-256 segment `i`'s file had when it was sealed, hex, if known
    /// (a file that changed since is named).
    fn sha256(&self, _i: usize) -> Option<String> {
        None
    }
}

#[async_trait::async_trait]
impl SegmentFiles for Vec<PathBuf> {
    fn count(&self) -> usize {
        self.len()
    }
    async fn open(&self, i: usize) -> Result<PathBuf, EvidenceError> {
        self.get(i)
            .cloned()
            .ok_or_else(|| EvidenceError::Store(format!("there is no segment {}", i + 1)))
    }
    async fn done(&self, _: usize) {}
}

/// A log with no sealed segments.
struct NoSegments;

#[async_trait::async_trait]
impl SegmentFiles for NoSegments {
    fn count(&self) -> usize {
        0
    }
    async fn open(&self, i: usize) -> Result<PathBuf, EvidenceError> {
        Err(EvidenceError::Store(format!(
            "there is no segment {}",
            i + 1
        )))
    }
    async fn done(&self, _: usize) {}
}

/// Where a log's entries are: its sealed segments, in order, then the live
/// store.
#[derive(Clone, Copy)]
pub struct LogSource<'a> {
    /// Segment files, oldest first.
    pub segments: &'a dyn SegmentFiles,
    /// The live store.
    pub store: &'a dyn EvidenceStore,
    /// Storage positions (inclusive ranges, sorted) of sealed segments'
    /// rows still awaiting removal from the store: read from the segment
    /// files instead. Any other row is read, wherever it is stored.
    pub awaiting_purge: &'a [(i64, i64)],
}

impl<'a> LogSource<'a> {
    /// A log kept whole in its store.
    pub fn store(store: &'a dyn EvidenceStore) -> Self {
        Self {
            segments: &NoSegments,
            store,
            awaiting_purge: &[],
        }
    }
}

/// What a pass over a log meets, in order.
pub enum Page<'a> {
    /// The start of a sealed segment: its header.
    Segment(&'a SegmentHeader),
    /// Rows in storage order.
    Rows(&'a [LogRow]),
    /// The end of a sealed segment whose file does not hash to what was
    /// recorded when it was sealed.
    Changed {
        /// The segment.
        number: u64,
        /// The SHA-256 recorded.
        recorded: String,
        /// The file's.
        found: String,
    },
}

/// Gives `each` every stored row in storage order (the segments', then the
/// store's), a page at a time, until it breaks.
pub async fn for_each_row(
    log: LogSource<'_>,
    mut each: impl FnMut(&LogRow) -> ControlFlow<()>,
) -> Result<(), EvidenceError> {
    let mut changed = None;
    for_each_page(log, |page| match page {
        Page::Rows(rows) => rows.iter().try_for_each(&mut each),
        Page::Segment(_) => ControlFlow::Continue(()),
        Page::Changed {
            number,
            recorded,
            found,
        } => {
            changed = Some(EvidenceError::Damaged(format!(
                "segment {number}'s file does not hash to the SHA-256 recorded when it was sealed \
                 ({recorded}; now {found}): it changed; run `gatehouse audit verify`"
            )));
            ControlFlow::Break(())
        }
    })
    .await?;
    changed.map_or(Ok(()), Err)
}

/// Gives `each` every segment header and page of rows in storage order
/// until it breaks: the segments' lines, then the store's rows; the next
/// page is read (on another thread) while `each` works through this one.
pub async fn for_each_page(
    log: LogSource<'_>,
    mut each: impl FnMut(Page<'_>) -> ControlFlow<()>,
) -> Result<(), EvidenceError> {
    for i in 0..log.segments.count() {
        let path = log.segments.open(i).await?;
        let read = read_segment(&path, log.segments.sha256(i), &mut each).await;
        log.segments.done(i).await;
        if read?.is_break() {
            return Ok(());
        }
    }
    let store = log.store;
    let sealed = |r: &LogRow| {
        log.awaiting_purge
            .iter()
            .any(|&(a, b)| r.position >= a && r.position <= b)
    };
    let mut page = store.entries_after(None, PAGE).await.map_err(unavailable)?;
    loop {
        let next = match page.last() {
            Some(last) if page.len() == PAGE => Some(last.position),
            _ => None,
        };
        if !log.awaiting_purge.is_empty() {
            page.retain(|r| !sealed(r));
        }
        let (read, worked) = tokio::join!(
            async {
                match next {
                    Some(after) => store.entries_after(Some(after), PAGE).await.map(Some),
                    None => Ok(None),
                }
            },
            async { each(Page::Rows(&page)) }
        );
        if worked.is_break() {
            return Ok(());
        }
        match read.map_err(unavailable)? {
            Some(p) => page = p,
            None => return Ok(()),
        }
    }
}

/// One segment file's header and rows, to `each`.
async fn read_segment(
    path: &std::path::Path,
    recorded: Option<String>,
    each: &mut impl FnMut(Page<'_>) -> ControlFlow<()>,
) -> Result<ControlFlow<()>, EvidenceError> {
    let path = path.to_path_buf();
    let reader = tokio::task::spawn_blocking(move || SegmentReader::open(&path))
        .await
        .map_err(|e| EvidenceError::Store(format!("reading a segment: {e}")))??;
    let header = reader.header().clone();
    if each(Page::Segment(&header)).is_break() {
        return Ok(ControlFlow::Break(()));
    }
    let mut reader = Some(reader);
    let mut page = next_lines(&mut reader).await?;
    while !page.is_empty() {
        let (read, worked) =
            tokio::join!(next_lines(&mut reader), async { each(Page::Rows(&page)) });
        if worked.is_break() {
            return Ok(ControlFlow::Break(()));
        }
        page = read?;
    }
    let found = reader.as_ref().map(SegmentReader::sha256);
    if let (Some(recorded), Some(found)) = (recorded, found) {
        if recorded != found {
            let number = header.number;
            return Ok(each(Page::Changed {
                number,
                recorded,
                found,
            }));
        }
    }
    Ok(ControlFlow::Continue(()))
}

/// The next page of a segment file, read on the blocking pool (the reader
/// goes there and back; `None` once it failed).
async fn next_lines(reader: &mut Option<SegmentReader>) -> Result<Vec<LogRow>, EvidenceError> {
    let Some(mut r) = reader.take() else {
        return Ok(Vec::new());
    };
    let (r, page) = tokio::task::spawn_blocking(move || {
        let page = r.next_page(PAGE);
        (r, page)
    })
    .await
    .map_err(|e| EvidenceError::Store(format!("reading a segment: {e}")))?;
    *reader = Some(r);
    page
}

/// The signed checkpoints a segment header carries.
fn header_checkpoints(h: &SegmentHeader) -> Vec<StoredCheckpoint> {
    let source = format!("segment {}", h.number);
    h.start_checkpoint
        .iter()
        .chain(std::iter::once(&h.end_checkpoint))
        .map(|note| StoredCheckpoint {
            source: source.clone(),
            note: note.clone(),
        })
        .collect()
}

/// Runs CPU-bound `f` where the runtime allows it to block: on a
/// multi-threaded runtime its worker hands its other tasks on first.
fn off_the_runtime<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Reads (decodes and hashes) a page's rows, split over the machine's
/// cores.
fn read_page(rows: &[LogRow]) -> Vec<ReadRow> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let per = rows.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let mut parts = rows.chunks(per);
        let first = parts.next().unwrap_or_default();
        let others: Vec<_> = parts
            .map(|part| {
                s.spawn(|| {
                    part.iter()
                        .map(|r| ReadRow::of(&r.bytes))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut read: Vec<ReadRow> = first.iter().map(|r| ReadRow::of(&r.bytes)).collect();
        for t in others {
            match t.join() {
                Ok(part) => read.extend(part),
                // Reading never panics (it is property-tested); if it did,
                // the panic goes on as it would have on this thread.
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        read
    })
}

/// Verifies every entry of `log` against its checkpoints (the store's and
/// the segments') and `witnessed` (kept elsewhere), in storage order; `each` is given every
/// row read: its head when it decodes (a report or a progress bar reads
/// along without decoding it again).
pub async fn verify_store(
    log: LogSource<'_>,
    witnessed: Vec<StoredCheckpoint>,
    key: &VerifierKey,
    mut each: impl FnMut(Option<Head>),
) -> Result<Report, EvidenceError> {
    let stored = log.store.checkpoints().await.map_err(unavailable)?;
    let checkpoints = stored
        .into_iter()
        .map(|note| StoredCheckpoint {
            source: "store".into(),
            note,
        })
        .chain(witnessed);
    let mut verifier = Verifier::new(checkpoints, key);
    for_each_page(log, |page| {
        match page {
            // Its checkpoints are checked with the store's as the tree reaches them.
            Page::Segment(h) => verifier.add_checkpoints(header_checkpoints(h)),
            Page::Changed {
                number,
                recorded,
                found,
            } => verifier.name(Finding::SegmentChanged {
                segment: number,
                recorded,
                found,
            }),
            Page::Rows(rows) => {
                for (row, read) in rows.iter().zip(off_the_runtime(|| read_page(rows))) {
                    each(verifier.push_read(row.position, Some(row.seq), read));
                }
            }
        }
        ControlFlow::Continue(())
    })
    .await?;
    Ok(verifier.finish())
}
