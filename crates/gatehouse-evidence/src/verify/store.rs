//! Reading a log where it is stored, a page at a time: verification and
//! every reader after it (exports, proofs, packs) keep one page in memory.

use super::{Report, StoredCheckpoint, Verifier};
use crate::entry::Entry;
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
    let mut page = store.entries_after(None, PAGE).await.map_err(unavailable)?;
    loop {
        // The next page is read (on the store's thread) while this one is
        // worked through.
        let next = match page.last() {
            Some(last) if page.len() == PAGE => Some(last.position),
            _ => None,
        };
        let work = async { page.iter().try_for_each(&mut each) };
        let (read, worked) = tokio::join!(
            async {
                match next {
                    Some(after) => store.entries_after(Some(after), PAGE).await.map(Some),
                    None => Ok(None),
                }
            },
            work
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

/// Verifies every entry of `store` against its checkpoints and `witnessed`
/// (checkpoints kept elsewhere), in storage order; `each` is given every
/// row read, decoded when it decodes (a report, an export or a progress bar
/// reads along, and no entry is decoded twice).
pub async fn verify_store(
    store: &dyn EvidenceStore,
    witnessed: Vec<StoredCheckpoint>,
    key: &VerifierKey,
    mut each: impl FnMut(Option<Entry>),
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
    for_each_row(store, |row| {
        each(verifier.push(row.position, &row.bytes));
        ControlFlow::Continue(())
    })
    .await?;
    Ok(verifier.finish())
}
