//! Reading a log where it is stored, a page at a time: verification and
//! every reader after it (exports, proofs, packs) keep one page in memory.

use super::{ReadRow, Report, StoredCheckpoint, Verifier};
use crate::entry::Head;
use crate::note::VerifierKey;
use crate::segment::SegmentReader;
use crate::EvidenceError;
use gatehouse_core::{EvidenceStore, LogRow};
use std::ops::ControlFlow;
use std::path::PathBuf;

/// Rows read per page.
pub const PAGE: usize = 4096;

fn unavailable(e: gatehouse_core::StoreError) -> EvidenceError {
    EvidenceError::Store(e.to_string())
}

/// Where a log's entries are: its sealed segment files, in order, then the
/// live store.
#[derive(Clone, Copy)]
pub struct LogSource<'a> {
    /// Segment files, oldest first.
    pub segments: &'a [PathBuf],
    /// The live store.
    pub store: &'a dyn EvidenceStore,
}

impl<'a> LogSource<'a> {
    /// A log kept whole in its store.
    pub fn store(store: &'a dyn EvidenceStore) -> Self {
        Self {
            segments: &[],
            store,
        }
    }
}

/// Gives `each` every stored row in storage order (the segments', then the
/// store's), a page at a time, until it breaks.
pub async fn for_each_row(
    log: LogSource<'_>,
    mut each: impl FnMut(&LogRow) -> ControlFlow<()>,
) -> Result<(), EvidenceError> {
    for_each_page(log, |page| page.iter().try_for_each(&mut each)).await
}

/// Gives `each` every page of rows in storage order until it breaks: the
/// segment files' lines, then the store's rows; the next page is read (on
/// another thread) while `each` works through this one.
pub async fn for_each_page(
    log: LogSource<'_>,
    mut each: impl FnMut(&[LogRow]) -> ControlFlow<()>,
) -> Result<(), EvidenceError> {
    for path in log.segments {
        let mut reader = Some(SegmentReader::open(path)?);
        let mut page = next_lines(&mut reader).await?;
        while !page.is_empty() {
            let (read, worked) = tokio::join!(next_lines(&mut reader), async { each(&page) });
            if worked.is_break() {
                return Ok(());
            }
            page = read?;
        }
    }
    let store = log.store;
    let mut page = store.entries_after(None, PAGE).await.map_err(unavailable)?;
    loop {
        let next = match page.last() {
            Some(last) if page.len() == PAGE => Some(last.position),
            _ => None,
        };
        let (read, worked) = tokio::join!(
            async {
                match next {
                    Some(after) => store.entries_after(Some(after), PAGE).await.map(Some),
                    None => Ok(None),
                }
            },
            async { each(&page) }
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

/// The signed checkpoints segment headers carry (verified with the rest).
fn segment_checkpoints(segments: &[PathBuf]) -> Result<Vec<StoredCheckpoint>, EvidenceError> {
    let mut out = Vec::new();
    for path in segments {
        let r = SegmentReader::open(path)?;
        let h = r.header();
        let source = format!("segment {}", h.number);
        out.extend(h.start_checkpoint.iter().map(|note| StoredCheckpoint {
            source: source.clone(),
            note: note.clone(),
        }));
        out.push(StoredCheckpoint {
            source,
            note: h.end_checkpoint.clone(),
        });
    }
    Ok(out)
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
        .chain(segment_checkpoints(log.segments)?)
        .chain(witnessed);
    let mut verifier = Verifier::new(checkpoints, key);
    for_each_page(log, |page| {
        for (row, read) in page.iter().zip(read_page(page)) {
            each(verifier.push_read(row.position, read));
        }
        ControlFlow::Continue(())
    })
    .await?;
    Ok(verifier.finish())
}
