//! Naming what is wrong in a window of stored rows: the stretch from just
//! before where the log stops being regular to where it is regular again.
//! The rows before the window are settled (their chain is known), so the
//! analysis starts from that chain's state ([`Settled`]) rather than from
//! entry 0: memory is the window's, not the log's.

use super::Finding;
use crate::merkle::Hash;
use std::collections::BTreeMap;

/// One stored row as verification keeps it: what linking and naming need,
/// not its bytes (about 100 bytes, whatever the entry's size).
#[derive(Clone, Debug)]
pub(super) struct Row {
    /// Storage position.
    pub(super) position: i64,
    /// Its sequence number: the decoded entry's, or the one its bytes still
    /// carry when they no longer decode.
    pub(super) seq: Option<u64>,
    /// The hash it links to, when it decodes.
    pub(super) prev: Option<Hash>,
    /// Its leaf hash (of the bytes as stored, readable or not).
    pub(super) leaf: Hash,
}

impl Row {
    fn decoded(&self) -> bool {
        self.prev.is_some()
    }
}

/// The chain so far: what the rows after it must continue.
#[derive(Clone, Copy, Debug)]
pub(super) struct Settled {
    /// The next sequence number.
    pub(super) next: u64,
    /// The leaf hash of entry `next - 1` as chosen (any bytes).
    pub(super) before: Option<Hash>,
    /// The hash entry `next` must link to; `None` when the link is not
    /// checked (after an unreadable entry or a gap, named already).
    pub(super) want: Option<Hash>,
    /// Storage position of the last chosen row.
    pub(super) position: Option<i64>,
}

impl Settled {
    /// Before the first entry.
    pub(super) fn start() -> Self {
        Self {
            next: 0,
            before: None,
            want: Some([0; 32]),
            position: None,
        }
    }

    /// After `row`, chosen as entry `seq`.
    pub(super) fn after(row: &Row, seq: u64) -> Self {
        Self {
            next: seq + 1,
            before: Some(row.leaf),
            want: row.decoded().then_some(row.leaf),
            position: Some(row.position),
        }
    }
}

/// Of several copies of one sequence number, the one that fits between its
/// neighbours (links to the entry before, is linked to by the one after; a
/// readable one; else the first stored); the others are named as inserted.
fn choose<'r>(
    copies: &BTreeMap<u64, Vec<&'r Row>>,
    settled: &Settled,
    findings: &mut Vec<Finding>,
) -> BTreeMap<u64, &'r Row> {
    let mut chosen: BTreeMap<u64, &Row> = BTreeMap::new();
    for (&seq, all) in copies {
        let before = match seq.checked_sub(1) {
            Some(s) if s + 1 == settled.next => settled.before,
            Some(s) => chosen.get(&s).map(|c| c.leaf),
            None => None,
        };
        let after: Vec<Hash> = copies
            .get(&(seq + 1))
            .into_iter()
            .flatten()
            .filter_map(|c| c.prev)
            .collect();
        let fit = |c: &Row| {
            let linked = c
                .prev
                .is_some_and(|p| Some(p) == before || (seq == 0 && p == [0; 32]));
            let linked_to = after.contains(&c.leaf);
            (u8::from(linked) + u8::from(linked_to), c.decoded())
        };
        // The first stored wins a tie: `max_by_key` keeps the last maximum.
        let Some(best) = all.iter().rev().max_by_key(|c| fit(c)) else {
            continue;
        };
        for c in all {
            if !std::ptr::eq(*c, *best) {
                findings.push(Finding::Inserted {
                    seq,
                    position: c.position,
                });
            }
        }
        chosen.insert(seq, best);
    }
    chosen
}

/// Names what is wrong in `rows` (in storage order), continuing `settled`;
/// returns the chosen chain, in sequence order, and the positions of the
/// rows whose number is lost.
///
/// Each kind of change is named once, as what it is: an entry whose bytes
/// no longer decode is named (when read) and not also counted as deleted;
/// of two copies of one number, the one that does not fit the chain is the
/// inserted one, wherever it is stored; a copy of an entry already settled
/// is inserted; every broken link names the entry before it as edited.
pub(super) fn analyse<'r>(
    rows: &'r [Row],
    settled: &Settled,
    findings: &mut Vec<Finding>,
) -> (Vec<(u64, &'r Row)>, Vec<i64>) {
    let mut copies: BTreeMap<u64, Vec<&Row>> = BTreeMap::new();
    let mut unplaced: Vec<i64> = Vec::new();
    for r in rows {
        match r.seq {
            // A copy of an entry settled before the window.
            Some(s) if s < settled.next => findings.push(Finding::Inserted {
                seq: s,
                position: r.position,
            }),
            Some(s) => copies.entry(s).or_default().push(r),
            None => unplaced.push(r.position),
        }
    }
    let chosen = choose(&copies, settled, findings);

    // Storage order of the entries in the chain.
    // (Rows are told apart by identity, not by position: positions in a
    // segment come from its header, which is not signed.)
    let mut last_seq: Option<u64> = None;
    for r in rows {
        let Some(seq) = r
            .seq
            .filter(|s| chosen.get(s).is_some_and(|c| std::ptr::eq(*c, r)))
        else {
            continue;
        };
        if let Some(prev) = last_seq {
            if seq < prev {
                findings.push(Finding::Reordered {
                    first: prev,
                    second: seq,
                });
            }
        }
        last_seq = Some(seq);
    }

    // Gaps and links, in sequence order.
    let mut expected = settled.next;
    let mut want = settled.want;
    let mut prev_position = settled.position;
    let mut broken: Vec<u64> = Vec::new();
    for (&seq, c) in &chosen {
        if seq > expected {
            // Unreadable entries stored between the two neighbours may be
            // the missing numbers: they are named already.
            let (lo, hi) = match prev_position {
                Some(p) => (p.min(c.position), p.max(c.position)),
                None => (i64::MIN, c.position),
            };
            let between = unplaced.iter().filter(|&&p| p > lo && p < hi).count() as u64;
            if between < seq - expected {
                findings.push(Finding::Deleted {
                    from: expected,
                    to: seq - 1,
                });
            }
            want = None;
        }
        let want_here = if seq == 0 { Some([0; 32]) } else { want };
        if let (Some(w), Some(p)) = (want_here, c.prev) {
            if p != w {
                broken.push(seq);
            }
        }
        // After an unreadable entry (named already) the link is not checked.
        want = c.decoded().then_some(c.leaf);
        prev_position = Some(c.position);
        expected = seq + 1;
    }
    // A link broken before entry b: entry b-1's content changed (or, for
    // entry 0, its own link).
    for b in broken {
        findings.push(Finding::Edited {
            seq: b.saturating_sub(1),
        });
    }
    (chosen.into_iter().collect(), unplaced)
}
