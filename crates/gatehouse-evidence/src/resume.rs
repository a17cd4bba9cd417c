//! Restarting in constant time: the writer resumes from the state stored
//! with the newest signed checkpoint (the Merkle frontier, the last entry's
//! hash and its path into the frontier), checks that state against the
//! checkpoint's signed root, and reads only the entry the checkpoint ends
//! with and the unsigned tail after it. What the checkpoint covers was
//! signed after it verified; new checkpoints extend the signed frontier and
//! never read those rows, so they cannot sign over damage there, and
//! `gatehouse audit verify` still finds any.

use crate::entry::Entry;
use crate::merkle::{leaf_hash, Frontier, Hash};
use crate::note::VerifierKey;
use crate::verify::{for_each_row, verify_store, LogSource, PAGE};
use crate::EvidenceError;
use gatehouse_core::{EvidenceStore, StoredCheckpoint};
use std::ops::ControlFlow;

/// Where the writer goes on from.
pub(crate) struct Resumed {
    pub(crate) next_seq: u64,
    pub(crate) prev: Hash,
    pub(crate) frontier: Frontier,
    /// Entries read to resume (the checkpoint's last one and the tail).
    pub(crate) read: u64,
    /// Entries the newest good checkpoint covers.
    pub(crate) checkpointed: u64,
}

/// Resumes from `cp`, the newest stored checkpoint with its state.
pub(crate) async fn resume(
    store: &dyn EvidenceStore,
    cp: &StoredCheckpoint,
    verifier: &VerifierKey,
) -> Result<Resumed, EvidenceError> {
    let damaged = |why: String| EvidenceError::Damaged(why);
    let unavailable = |e: gatehouse_core::StoreError| EvidenceError::Store(e.to_string());
    let signed = verifier
        .open(&cp.note)
        .map_err(|e| damaged(format!("the newest checkpoint does not verify: {e}")))?;
    let (mut frontier, last_leaf) = Frontier::from_state(&cp.state).ok_or_else(|| {
        damaged("the state stored with the newest checkpoint is malformed".into())
    })?;
    if signed.size != cp.size || frontier.size() != cp.size || frontier.root() != signed.root {
        return Err(damaged(format!(
            "the state stored with the newest checkpoint (size {}) does not match its signed root",
            cp.size
        )));
    }
    // The checkpoint's last entry, then the tail, by number.
    let last = cp.size - 1;
    let (mut next, mut prev) = (cp.size, last_leaf);
    let mut seen: Option<(u64, i64)> = None;
    let mut read = 0u64;
    loop {
        let from = seen.map_or(last, |(seq, _)| seq);
        let page = store.entries_from(from, PAGE).await.map_err(unavailable)?;
        let full = page.len() == PAGE;
        let mut progressed = false;
        for row in page {
            let entry = Entry::decode(&row.bytes).map_err(|e| {
                damaged(format!(
                    "the entry stored at position {}: {e}",
                    row.position
                ))
            })?;
            // The store finds rows by the number it keeps beside each one.
            if i64::try_from(entry.seq).ok() != Some(row.seq) {
                return Err(damaged(format!(
                    "the entry stored at position {} is entry {} but is filed as entry {}",
                    row.position, entry.seq, row.seq
                )));
            }
            // Read on an earlier page already.
            if seen.is_some_and(|s| (entry.seq, row.position) <= s) {
                continue;
            }
            read += 1;
            progressed = true;
            let leaf = leaf_hash(&row.bytes);
            match seen {
                None if entry.seq != last || leaf != last_leaf => {
                    return Err(damaged(format!(
                        "entry {last}, the last the newest checkpoint signs, is not as signed"
                    )))
                }
                None => {}
                Some((_, position)) if row.position < position => {
                    return Err(damaged(format!(
                        "entry {} is stored before entry {}",
                        entry.seq,
                        entry.seq.saturating_sub(1)
                    )))
                }
                Some(_) if entry.seq != next => {
                    return Err(damaged(format!(
                        "after entry {} comes entry {} (an entry is missing or repeated)",
                        next - 1,
                        entry.seq
                    )))
                }
                Some(_) if entry.prev != prev => {
                    return Err(damaged(format!(
                        "entry {} does not link to entry {}",
                        entry.seq,
                        next - 1
                    )))
                }
                Some(_) => {
                    frontier.push(leaf);
                    prev = leaf;
                    next += 1;
                }
            }
            seen = Some((entry.seq, row.position));
        }
        if !full || !progressed {
            break;
        }
    }
    if seen.is_none() {
        return Err(damaged(format!(
            "entry {last}, the last the newest checkpoint signs, is missing"
        )));
    }
    let stored_last = store.last_seq().await.map_err(unavailable)?;
    if stored_last != Some(next - 1) {
        return Err(damaged(format!(
            "the log ends at entry {:?}, but its entries run on to {}",
            stored_last,
            next - 1
        )));
    }
    // Nothing stored after the last entry read (a row filed under another
    // number would not have been read).
    let last_position = store.last_position().await.map_err(unavailable)?;
    if last_position != seen.map(|(_, p)| p) {
        return Err(damaged(format!(
            "rows are stored after entry {} that do not follow on from it",
            next - 1
        )));
    }
    Ok(Resumed {
        next_seq: next,
        prev,
        frontier,
        read,
        checkpointed: cp.size,
    })
}

/// Verifies the whole log (there is no checkpoint state to resume from):
/// where the writer goes on from.
pub(crate) async fn verified_whole(
    store: &dyn EvidenceStore,
    verifier: &VerifierKey,
) -> Result<Resumed, EvidenceError> {
    let report = verify_store(LogSource::store(store), Vec::new(), verifier, |_| ()).await?;
    if !report.is_clean() {
        let findings: Vec<String> = report.findings.iter().map(|f| f.to_string()).collect();
        return Err(EvidenceError::Damaged(findings.join("; ")));
    }
    // Clean: the rows are the chain, in order; a second pass rebuilds the
    // frontier (the verifier keeps none of it).
    let mut frontier = Frontier::default();
    let mut prev = [0; 32];
    for_each_row(LogSource::store(store), |row| {
        prev = leaf_hash(&row.bytes);
        frontier.push(prev);
        ControlFlow::Continue(())
    })
    .await?;
    Ok(Resumed {
        next_seq: frontier.size(),
        prev,
        frontier,
        read: report.entries,
        checkpointed: report.verified_size,
    })
}
