//! The approval desk's in-memory index of live requests: what the data path
//! reads without waiting for the store. Every operation is O(1) in the
//! number of requests (a restart indexes every pending request, however
//! many), and an entry costs a fingerprint, an id and a deadline.

use crate::{ApprovalId, ApprovalRequest, ApprovalState, Timestamp};
use std::collections::HashMap;

/// A pending request as the index keeps it.
pub(crate) struct PendingEntry {
    pub(crate) id: ApprovalId,
    pub(crate) expires_at: Timestamp,
    requester: String,
}

/// Live requests by statement fingerprint.
#[derive(Default)]
pub(crate) struct ApprovalIndex {
    /// Approved, unused (request mode): id, deadline and the rows allowed.
    pub(crate) approved: HashMap<String, (ApprovalId, Option<Timestamp>, Option<u64>)>,
    /// Pending: a repeat of the statement points at the same request.
    pub(crate) pending: HashMap<String, PendingEntry>,
    /// The fingerprint each indexed request is under.
    fingerprints: HashMap<ApprovalId, String>,
    /// How many requests each requester has pending.
    pending_of: HashMap<String, u32>,
    /// Approvals taken here, newest last: a change read back from a shared
    /// store before the take landed there must not index them again.
    taken: std::collections::VecDeque<ApprovalId>,
}

/// Approvals taken here that the index remembers.
const TAKEN_KEPT: usize = 4_096;

impl ApprovalIndex {
    /// Indexes `r` as it now stands (a decided, used or expired request
    /// leaves the index).
    pub(crate) fn update(&mut self, r: &ApprovalRequest) {
        self.remove(&r.id);
        match r.state {
            ApprovalState::Pending => {
                let entry = PendingEntry {
                    id: r.id.clone(),
                    expires_at: r.expires_at,
                    requester: r.requester.subject.clone(),
                };
                *self.pending_of.entry(entry.requester.clone()).or_default() += 1;
                if let Some(old) = self.pending.insert(r.fingerprint.clone(), entry) {
                    // Another request for the same statement (filed twice in
                    // a race): the newest is the one repeats find.
                    self.fingerprints.remove(&old.id);
                    self.forget_pending_of(&old.requester);
                }
                self.fingerprints
                    .insert(r.id.clone(), r.fingerprint.clone());
            }
            ApprovalState::Approved => {
                let entry = (r.id.clone(), r.valid_until, r.max_rows);
                if let Some((old, ..)) = self.approved.insert(r.fingerprint.clone(), entry) {
                    self.fingerprints.remove(&old);
                }
                self.fingerprints
                    .insert(r.id.clone(), r.fingerprint.clone());
            }
            ApprovalState::Denied | ApprovalState::Expired | ApprovalState::Used => {}
        }
    }

    /// Takes request `id` out of the index, wherever it is.
    fn remove(&mut self, id: &ApprovalId) {
        let Some(fingerprint) = self.fingerprints.remove(id) else {
            return;
        };
        if self.pending.get(&fingerprint).is_some_and(|e| e.id == *id) {
            if let Some(e) = self.pending.remove(&fingerprint) {
                self.forget_pending_of(&e.requester);
            }
        }
        if self
            .approved
            .get(&fingerprint)
            .is_some_and(|(a, ..)| a == id)
        {
            self.approved.remove(&fingerprint);
        }
    }

    fn forget_pending_of(&mut self, requester: &str) {
        if let Some(n) = self.pending_of.get_mut(requester) {
            *n -= 1;
            if *n == 0 {
                self.pending_of.remove(requester);
            }
        }
    }

    /// Takes the approval covering `fingerprint` if one is valid at `now`.
    pub(crate) fn take_approved(
        &mut self,
        fingerprint: &str,
        now: Timestamp,
    ) -> Option<(ApprovalId, Option<u64>)> {
        let (id, until, rows) = self.approved.remove(fingerprint)?;
        self.fingerprints.remove(&id);
        if self.taken.len() >= TAKEN_KEPT {
            self.taken.pop_front();
        }
        self.taken.push_back(id.clone());
        until.is_none_or(|u| now < u).then_some((id, rows))
    }

    /// Indexes `r` as another node stored it, unless this node has gone
    /// past that state (changes arrive late and may repeat): an approval
    /// taken here, or a request approved here read back as pending.
    /// Whether it was indexed.
    pub(crate) fn update_remote(&mut self, r: &ApprovalRequest) -> bool {
        let stale = match r.state {
            ApprovalState::Approved => self.taken.contains(&r.id),
            ApprovalState::Pending => self
                .fingerprints
                .get(&r.id)
                .and_then(|f| self.approved.get(f))
                .is_some_and(|(a, ..)| *a == r.id),
            ApprovalState::Denied | ApprovalState::Expired | ApprovalState::Used => false,
        };
        if !stale {
            self.update(r);
        }
        !stale
    }

    /// The pending request for `fingerprint`.
    pub(crate) fn pending_for(&self, fingerprint: &str) -> Option<ApprovalId> {
        self.pending.get(fingerprint).map(|e| e.id.clone())
    }

    /// How many requests `requester` has pending.
    pub(crate) fn pending_of(&self, requester: &str) -> u32 {
        self.pending_of.get(requester).copied().unwrap_or(0)
    }

    /// Requests whose deadline passed by `now` (pending ones expire,
    /// approved ones lapse).
    pub(crate) fn due(&self, now: Timestamp) -> Vec<ApprovalId> {
        self.pending
            .values()
            .filter(|e| now >= e.expires_at)
            .map(|e| e.id.clone())
            .chain(
                self.approved
                    .values()
                    .filter(|(_, until, _)| until.is_some_and(|u| now >= u))
                    .map(|(id, ..)| id.clone()),
            )
            .collect()
    }

    /// How many requests are indexed (pending, approved).
    pub(crate) fn len(&self) -> (usize, usize) {
        (self.pending.len(), self.approved.len())
    }
}
