//! Reading a log where it is stored, a page at a time: verification and
//! every reader after it (exports, proofs, packs) keep one page in memory.

use super::{ReadRow, Report, StoredCheckpoint, Verifier};
use crate::entry::Head;
use crate::note::VerifierKey;
use crate::EvidenceError;
use gatehouse_core::{EvidenceStore, LogRow};
use std::ops::ControlFlow;

/// Rows read per page.
pub const PAGE: usize = 4096;

fn unavailable(e: gatehouse_core::StoreError) -> EvidenceError {
    EvidenceError::Store(e.to_string())
}

/// Gives `each` every stored row in storage order, a page at a time, until
/// it breaks.
pub async fn for_each_row(
    store: &dyn EvidenceStore,
    mut each: impl FnMut(&LogRow) -> ControlFlow<()>,
) -> Result<(), EvidenceError> {
    for_each_page(store, |page| page.iter().try_for_each(&mut each)).await
}

/// Gives `each` every page of stored rows in storage order until it breaks;
/// the next page is read (on the store's thread) while `each` works
/// through this one.
pub async fn for_each_page(
    store: &dyn EvidenceStore,
    mut each: impl FnMut(&[LogRow]) -> ControlFlow<()>,
) -> Result<(), EvidenceError> {
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

/// Verifies every entry of `store` against its checkpoints and `witnessed`
/// (checkpoints kept elsewhere), in storage order; `each` is given every
/// row read: its head when it decodes (a report or a progress bar reads
/// along without decoding it again).
pub async fn verify_store(
    store: &dyn EvidenceStore,
    witnessed: Vec<StoredCheckpoint>,
    key: &VerifierKey,
    mut each: impl FnMut(Option<Head>),
) -> Result<Report, EvidenceError> {
    let stored = store.checkpoints().await.map_err(unavailable)?;
    let checkpoints = stored
        .into_iter()
        .map(|note| StoredCheckpoint {
            source: "store".into(),
            note,
        })
        .chain(witnessed);
    let mut verifier = Verifier::new(checkpoints, key);
    for_each_page(store, |page| {
        for (row, read) in page.iter().zip(read_page(page)) {
            each(verifier.push_read(row.position, read));
        }
        ControlFlow::Continue(())
    })
    .await?;
    Ok(verifier.finish())
}
