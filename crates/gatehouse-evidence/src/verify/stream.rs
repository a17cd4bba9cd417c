//! Verification in one pass over the log, in storage order, in memory that
//! does not grow with the log.
//!
//! While the rows are regular (each decodes, is numbered one more than the
//! row before and links to it) they are settled a few thousand rows behind
//! the reader: pushed into a Merkle frontier, which checks every signed
//! checkpoint as the tree reaches its size. Where the log stops being
//! regular, the rows from shortly before that point until it has been
//! regular again for a while form a window, and the window is analysed as a
//! whole ([`super::window`]): edits, deletions, insertions, reorderings and
//! unreadable rows within it are named exactly as if the whole log were in
//! memory. Damage spread further than a window (an entry moved millions of
//! rows away) is still found, named by what it looks like from each place
//! (deleted here, inserted there).

use super::window::{analyse, Row, Settled};
use super::{Finding, Report, StoredCheckpoint};
use crate::entry::{Entry, Head};
use crate::merkle::{leaf_hash, Frontier};
use crate::note::{Checkpoint, VerifierKey};
use std::collections::VecDeque;

/// How far verification looks around damage.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    /// Regular rows kept unsettled behind the reader (so that a copy found
    /// later can still be judged against them).
    pub lookback: usize,
    /// Regular rows after damage that close a window.
    pub settle: usize,
    /// The most rows a window holds before it is analysed anyway.
    pub cap: usize,
}

impl Default for Window {
    fn default() -> Self {
        Self {
            lookback: 4096,
            settle: 4096,
            cap: 262_144,
        }
    }
}

impl Window {
    /// No limit: the whole log in one window once anything is irregular
    /// (what verification did before it streamed; for comparisons in tests).
    pub fn unbounded() -> Self {
        Self {
            lookback: usize::MAX,
            settle: usize::MAX,
            cap: usize::MAX,
        }
    }
}

/// The most findings a report lists; further ones are counted.
const MAX_FINDINGS: usize = 100_000;

/// Verifies a log read in storage order: [`Verifier::push`] each row,
/// then [`Verifier::finish`].
pub struct Verifier {
    key: VerifierKey,
    window: Window,
    /// Signed checkpoints, by size; `next_cp` is the first not yet reached.
    checkpoints: Vec<(String, Checkpoint)>,
    next_cp: usize,
    frontier: Frontier,
    /// A number is missing from the chain: no checkpoint past it can be checked.
    gap: bool,
    settled: Settled,
    /// Regular rows not yet settled.
    ring: VecDeque<Row>,
    /// Rows around damage, when in a window.
    damaged: Vec<Row>,
    in_window: bool,
    /// Regular rows at the end of the window.
    trailing: usize,
    /// One past the highest number in the chain.
    stored_through: u64,
    /// The largest storage position in the chain.
    last_position: Option<i64>,
    /// Positions of rows whose number is lost.
    unplaced: Vec<i64>,
    last_good: u64,
    /// Index in the findings of the first root mismatch.
    mismatch: Option<usize>,
    report: Report,
}

impl Verifier {
    /// A verifier of the log `checkpoints` (from the store and witnesses)
    /// sign with `key`.
    pub fn new(checkpoints: impl IntoIterator<Item = StoredCheckpoint>, key: &VerifierKey) -> Self {
        Self::with_window(checkpoints, key, Window::default())
    }

    /// With a given window (tests compare windows).
    pub fn with_window(
        checkpoints: impl IntoIterator<Item = StoredCheckpoint>,
        key: &VerifierKey,
        window: Window,
    ) -> Self {
        let mut report = Report::default();
        let mut cps = Vec::new();
        for c in checkpoints {
            match key.open(&c.note) {
                Ok(cp) => cps.push((c.source, cp)),
                Err(e) => report.findings.push(Finding::BadCheckpoint {
                    source: c.source,
                    reason: e.to_string(),
                }),
            }
        }
        cps.sort_by_key(|(_, cp)| cp.size);
        let mut v = Self {
            key: key.clone(),
            window,
            checkpoints: cps,
            next_cp: 0,
            frontier: Frontier::default(),
            gap: false,
            settled: Settled::start(),
            ring: VecDeque::new(),
            damaged: Vec::new(),
            in_window: false,
            trailing: 0,
            stored_through: 0,
            last_position: None,
            unplaced: Vec::new(),
            last_good: 0,
            mismatch: None,
            report,
        };
        v.check_checkpoints();
        v
    }

    /// More signed checkpoints, met on the way (a segment's header): each
    /// is checked when the tree reaches its size (one of a size already
    /// passed is a copy of one checked then, from the store).
    pub fn add_checkpoints(&mut self, checkpoints: impl IntoIterator<Item = StoredCheckpoint>) {
        for c in checkpoints {
            match self.key.open(&c.note) {
                Ok(cp) => {
                    let rest = &self.checkpoints[self.next_cp..];
                    let at = self.next_cp + rest.partition_point(|(_, x)| x.size <= cp.size);
                    self.checkpoints.insert(at, (c.source, cp));
                }
                Err(e) => self.found(Finding::BadCheckpoint {
                    source: c.source,
                    reason: e.to_string(),
                }),
            }
        }
        self.check_checkpoints();
    }

    /// Entries read so far.
    pub fn entries(&self) -> u64 {
        self.report.entries
    }

    /// The next stored row, in storage order; its head, when it decodes
    /// (so that a reader reads along without decoding it again).
    pub fn push(&mut self, position: i64, bytes: &[u8]) -> Option<Head> {
        self.push_read(position, None, ReadRow::of(bytes))
    }

    /// [`Verifier::push`] of a row already read (decoding and hashing, the
    /// costly part, can run on other threads), with the number it is filed
    /// under when the store keeps one beside it.
    pub fn push_read(&mut self, position: i64, filed: Option<i64>, read: ReadRow) -> Option<Head> {
        self.report.entries += 1;
        let ReadRow { entry, leaf } = read;
        if let (Ok(head), Some(filed)) = (&entry, filed) {
            if i64::try_from(head.seq).ok() != Some(filed) {
                self.found(Finding::Misfiled {
                    position,
                    seq: head.seq,
                    filed,
                });
            }
        }
        let (row, decoded) = match entry {
            Ok(e) => (
                Row {
                    position,
                    seq: Some(e.seq),
                    prev: Some(e.prev),
                    leaf,
                },
                Some(e),
            ),
            Err((reason, seq)) => {
                self.found(Finding::Unreadable {
                    position,
                    seq,
                    reason,
                });
                (
                    Row {
                        position,
                        seq,
                        prev: None,
                        leaf,
                    },
                    None,
                )
            }
        };
        if self.in_window {
            let regular = self.damaged.last().is_some_and(|last| follows(&row, last));
            self.trailing = if regular { self.trailing + 1 } else { 0 };
            self.damaged.push(row);
            if self.trailing >= self.window.settle || self.damaged.len() >= self.window.cap {
                self.close_window();
            }
            return decoded;
        }
        let regular = match self.ring.back() {
            Some(last) => follows(&row, last),
            None => {
                row.seq == Some(self.settled.next)
                    && row.prev.is_some()
                    && row.prev == self.settled.want
            }
        };
        if regular {
            self.ring.push_back(row);
            if self.ring.len() > self.window.lookback {
                if let Some(r) = self.ring.pop_front() {
                    self.settle_regular(r);
                }
            }
        } else {
            self.damaged.extend(self.ring.drain(..));
            self.damaged.push(row);
            self.in_window = true;
            self.trailing = 0;
        }
        decoded
    }

    /// What was found, once every row is pushed.
    pub fn finish(mut self) -> Report {
        if self.in_window {
            self.close_window();
        }
        while let Some(r) = self.ring.pop_front() {
            self.settle_regular(r);
        }
        // Unreadable rows stored after the chain's last may be its missing end.
        let unplaced_after = self
            .unplaced
            .iter()
            .filter(|&&p| self.last_position.is_none_or(|l| p > l))
            .count() as u64;
        // A checkpoint larger than what is stored was cut off at the end
        // (the largest names it); one the entries reach but that a gap
        // (named already) stops short of cannot be checked, and is not a
        // truncation.
        let truncated = self.checkpoints[self.next_cp..]
            .iter()
            .rev()
            .find(|(_, cp)| cp.size > self.stored_through + unplaced_after)
            .map(|(source, cp)| Finding::Truncated {
                source: source.clone(),
                checkpoint_size: cp.size,
                present: self.stored_through,
            });
        if let Some(t) = truncated {
            self.found(t);
        }
        self.report
    }

    /// Names something found outside the rows (a segment file changed).
    pub fn name(&mut self, f: Finding) {
        self.found(f);
    }

    fn found(&mut self, f: Finding) {
        if self.report.findings.len() < MAX_FINDINGS {
            self.report.findings.push(f);
        } else {
            self.report.more_findings += 1;
        }
    }

    fn close_window(&mut self) {
        let rows = std::mem::take(&mut self.damaged);
        let mut findings = Vec::new();
        let (chain, unplaced) = analyse(&rows, &self.settled, &mut findings);
        for f in findings {
            self.found(f);
        }
        for (seq, row) in chain {
            self.settle(seq, row);
        }
        self.unplaced.extend(unplaced);
        self.in_window = false;
        self.trailing = 0;
    }

    fn settle_regular(&mut self, row: Row) {
        if let Some(seq) = row.seq {
            self.settle(seq, &row);
        }
    }

    /// `row` is entry `seq` of the chain.
    fn settle(&mut self, seq: u64, row: &Row) {
        self.settled = Settled::after(row, seq);
        self.stored_through = self.stored_through.max(seq + 1);
        self.last_position = self.last_position.max(Some(row.position));
        if self.gap {
            return;
        }
        if seq != self.frontier.size() {
            self.gap = true;
            return;
        }
        self.frontier.push(row.leaf);
        self.check_checkpoints();
    }

    /// Checks every checkpoint of the frontier's size.
    fn check_checkpoints(&mut self) {
        let size = self.frontier.size();
        while let Some((source, cp)) = self.checkpoints.get(self.next_cp) {
            if cp.size > size {
                break;
            }
            self.next_cp += 1;
            if cp.size < size {
                // Only a checkpoint of size 0 is passed by (none is checked
                // before the first push).
                continue;
            }
            if self.frontier.root() == cp.root {
                self.last_good = cp.size;
                self.report.checkpoints_verified += 1;
                self.report.verified_size = self.report.verified_size.max(cp.size);
                continue;
            }
            let source = source.clone();
            match self.mismatch.and_then(|i| self.report.findings.get_mut(i)) {
                Some(Finding::RootMismatch { also, .. }) => *also += 1,
                _ => {
                    self.mismatch = Some(self.report.findings.len());
                    let f = Finding::RootMismatch {
                        source,
                        size: cp.size,
                        last_good: self.last_good,
                        also: 0,
                    };
                    self.found(f);
                }
            }
        }
    }
}

/// One stored row, decoded (or why not, and the number its bytes still
/// carry) and hashed: the work of verification that can run on any thread.
pub struct ReadRow {
    entry: Result<Head, (String, Option<u64>)>,
    leaf: crate::merkle::Hash,
}

impl ReadRow {
    /// Reads `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self {
            entry: Entry::decode_head(bytes).map_err(|e| (e.to_string(), loose_seq(bytes))),
            leaf: leaf_hash(bytes),
        }
    }
}

/// Whether `row` regularly follows `last`: both decode, it is numbered one
/// more and links to it.
fn follows(row: &Row, last: &Row) -> bool {
    last.prev.is_some()
        && row.seq.is_some()
        && row.seq == last.seq.map(|s| s + 1)
        && row.prev == Some(last.leaf)
}

/// The sequence number an unreadable entry's bytes still carry, if any.
fn loose_seq(bytes: &[u8]) -> Option<u64> {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()?
        .get("seq")?
        .as_u64()
}
