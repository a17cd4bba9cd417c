//! The approval desk: where requests are filed, decided, used and expired.
//!
//! Every change is logged in the evidence log (durably) and stored before
//! it takes effect. The data path asks the desk, without waiting, whether
//! an approval covers a statement's fingerprint; taking one removes it, so
//! two sessions can never both use it.

use crate::approval_index::ApprovalIndex;
use crate::{
    ApprovalId, ApprovalRequest, ApprovalRoute, ApprovalState, AuditError, AuditEvent, AuditTrail,
    Identity, Store, StoreError, Timestamp, VoteRefused,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{mpsc, watch};

/// Why the desk could not act.
#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    /// No such request.
    #[error("no approval request {0}")]
    NotFound(ApprovalId),
    /// The vote was refused (who may decide, state, self-approval…).
    #[error(transparent)]
    Refused(#[from] VoteRefused),
    /// The request names a route the configuration no longer has.
    #[error("request {0} belongs to route {1}, which is not configured")]
    UnknownRoute(ApprovalId, String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The approval was used already (by another session, possibly on
    /// another node sharing the store) or lapsed: it is used at most once.
    #[error("approval {0} was already used or has lapsed; run the statement again to file a new request")]
    AlreadyUsed(ApprovalId),
    /// Another node changed the request while this vote was made.
    #[error("request {0} was changed by another approver meanwhile; read it again and vote again if it still needs you")]
    Conflict(ApprovalId),
    /// The evidence log failed: nothing was changed.
    #[error(transparent)]
    Audit(#[from] AuditError),
}

/// What happened to a request, for notifications.
#[derive(Clone, Debug)]
pub struct ApprovalNotice {
    /// `approval_requested`, `approval_approved`, `approval_denied` or `approval_expired`.
    pub event: &'static str,
    /// The request as it stands after the event.
    pub request: ApprovalRequest,
}

/// An action a policy sends to approval, as the desk files it.
#[derive(Clone, Debug)]
pub struct ActionToApprove<'a> {
    /// The routes the deciding policies name; the first configured one decides.
    pub routes: &'a [String],
    /// Who asks.
    pub requester: &'a Identity,
    /// The connection.
    pub connection: &'a str,
    /// The session and the action's number in it.
    pub session: crate::SessionId,
    /// Its number in the session.
    pub seq: u64,
    /// The action as recorded (masked).
    pub text: &'a str,
    /// Its parameters as recorded.
    pub params: &'a [Option<String>],
    /// What the approval is bound to.
    pub fingerprint: &'a str,
    /// The `@approval` policies.
    pub policies: &'a [String],
    /// Why it needs approval.
    pub analysis: &'a str,
    /// The caller's reason, if it gave one.
    pub reason: Option<&'a str>,
    /// A write over its row cap: the rows it changed.
    pub max_rows: Option<u64>,
}

/// What the desk says about an action that needs approval.
#[derive(Debug)]
pub enum Consulted {
    /// An approval covers it and is now taken: decide it again as approved,
    /// and mark the approval used once the action goes ahead.
    Approved(ApprovalId),
    /// It waits for a decision: the request's id, its route, and the new
    /// request to [`submit`](ApprovalDesk::submit) when none was pending.
    Waiting {
        /// The request.
        id: ApprovalId,
        /// Its route.
        route: ApprovalRoute,
        /// A request filed now (not yet submitted).
        new: Option<Box<ApprovalRequest>>,
    },
    /// The requester filed as many requests as it may this minute.
    TooMany(u32),
    /// The requester has as many requests pending as it may.
    TooManyPending(u32),
    /// None of the routes is configured.
    NoRoute,
}

/// The gateway's approval desk.
pub struct ApprovalDesk {
    routes: HashMap<String, ApprovalRoute>,
    store: Arc<dyn Store>,
    audit: Arc<dyn AuditTrail>,
    index: Mutex<ApprovalIndex>,
    /// Where notices go (webhooks); full or absent: nobody is told, the log still is.
    notices: Option<mpsc::Sender<ApprovalNotice>>,
    /// Held sessions waiting for a request's decision.
    waiters: Mutex<HashMap<ApprovalId, watch::Sender<Option<ApprovalState>>>>,
    /// Requests one requester may file per minute (none: no limit).
    filing_limit: Option<u32>,
    /// When each requester filed its requests of the last minute.
    filed: Mutex<HashMap<String, std::collections::VecDeque<Timestamp>>>,
    /// Requests one requester may have pending at once (none: no limit).
    pending_limit: Option<u32>,
}

/// Requesters whose filings the desk remembers before it forgets the quiet ones.
const FILERS_KEPT: usize = 10_000;

/// Requests read from the store at a time at start-up (every live one is
/// indexed, page by page).
const LOAD_PAGE: u32 = 1_000;

impl ApprovalDesk {
    /// Opens the desk over `store`, indexing the pending and approved
    /// requests it holds (they survive restarts).
    pub async fn open(
        routes: Vec<ApprovalRoute>,
        store: Arc<dyn Store>,
        audit: Arc<dyn AuditTrail>,
    ) -> Result<Self, StoreError> {
        let desk = Self {
            routes: routes.into_iter().map(|r| (r.name.clone(), r)).collect(),
            store,
            audit,
            index: Mutex::new(ApprovalIndex::default()),
            notices: None,
            waiters: Mutex::new(HashMap::new()),
            filing_limit: None,
            filed: Mutex::new(HashMap::new()),
            pending_limit: None,
        };
        for state in [ApprovalState::Pending, ApprovalState::Approved] {
            let mut after = None;
            loop {
                let page = desk
                    .store
                    .list_approvals_after(state, after.as_ref(), LOAD_PAGE)
                    .await?;
                let Some(last) = page.last() else { break };
                after = Some((last.created_at, last.id.clone()));
                for r in &page {
                    desk.index_request(r);
                }
            }
        }
        let (pending, approved) = desk.lock().len();
        tracing::info!(pending, approved, "approval requests indexed");
        Ok(desk)
    }

    /// Lets one requester have at most `limit` requests pending at once.
    pub fn with_pending_limit(mut self, limit: u32) -> Self {
        self.pending_limit = Some(limit);
        self
    }

    /// Sends a notice of every filed, decided and expired request to `tx`.
    pub fn with_notices(mut self, tx: mpsc::Sender<ApprovalNotice>) -> Self {
        self.notices = Some(tx);
        self
    }

    /// Lets one requester file at most `per_minute` requests a minute.
    pub fn with_filing_limit(mut self, per_minute: u32) -> Self {
        self.filing_limit = Some(per_minute);
        self
    }

    /// Counts a request `requester` is about to file at `now`; `Err` with the
    /// limit when it already filed that many in the last minute (then nothing
    /// is counted, and the caller must not file it).
    pub fn reserve_filing(&self, requester: &str, now: Timestamp) -> Result<(), u32> {
        let Some(limit) = self.filing_limit else {
            return Ok(());
        };
        let window_start = Timestamp::from_unix_millis(now.unix_millis() - 60_000);
        let mut filed = self.filed.lock().unwrap_or_else(|p| p.into_inner());
        if filed.len() > FILERS_KEPT {
            filed.retain(|_, times| times.back().is_some_and(|t| *t > window_start));
        }
        let times = filed.entry(requester.to_string()).or_default();
        while times.front().is_some_and(|t| *t <= window_start) {
            times.pop_front();
        }
        if times.len() >= limit as usize {
            return Err(limit);
        }
        times.push_back(now);
        Ok(())
    }

    /// Tells the notifiers, never waiting: a full queue drops the notice
    /// (with an error in the gateway's log); the evidence log has the event.
    fn notify(&self, event: &'static str, request: &ApprovalRequest) {
        if let Some(tx) = &self.notices {
            let notice = ApprovalNotice {
                event,
                request: request.clone(),
            };
            if tx.try_send(notice).is_err() {
                tracing::error!(request = %request.id, event, "approval notification queue full or closed; this notice is not sent");
            }
        }
    }

    /// Follows request `id` until it is decided: the value becomes the state
    /// it ended in (approved, denied or expired).
    pub fn watch(&self, id: &ApprovalId) -> watch::Receiver<Option<ApprovalState>> {
        let mut w = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        w.retain(|_, tx| tx.receiver_count() > 0);
        w.entry(id.clone())
            .or_insert_with(|| watch::channel(None).0)
            .subscribe()
    }

    /// Tells the held sessions of `r` how it ended, if it did.
    fn wake(&self, r: &ApprovalRequest) {
        if r.state == ApprovalState::Pending {
            return;
        }
        let mut w = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = w.remove(&r.id) {
            tx.send_replace(Some(r.state));
        }
    }

    fn lock(&self) -> MutexGuard<'_, ApprovalIndex> {
        // The index holds plain maps; a panic elsewhere cannot leave it half-updated.
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn index_request(&self, r: &ApprovalRequest) {
        self.lock().update(r);
    }

    /// Whether `who` may decide some route's requests (and so read all requests).
    pub fn is_approver(&self, who: &Identity) -> bool {
        self.routes
            .values()
            .any(|r| who.groups.iter().any(|g| r.approver_groups.contains(g)))
    }

    /// A configured route.
    pub fn route(&self, name: &str) -> Option<&ApprovalRoute> {
        self.routes.get(name)
    }

    /// Takes the approval covering `fingerprint`, if one is valid at `now`:
    /// it is no longer available to anyone else.
    pub fn take_approved(&self, fingerprint: &str, now: Timestamp) -> Option<ApprovalId> {
        self.take_approved_rows(fingerprint, now).map(|(id, _)| id)
    }

    /// Takes the approval covering `fingerprint`, if one is valid at `now`,
    /// with the rows it allows (a write approved over its row cap).
    pub fn take_approved_rows(
        &self,
        fingerprint: &str,
        now: Timestamp,
    ) -> Option<(ApprovalId, Option<u64>)> {
        self.lock().take_approved(fingerprint, now)
    }

    /// Takes in a request as another node stored it (read back from a
    /// shared store): indexed, and its held sessions woken once decided.
    /// Changes arrive late and may repeat, so a state this node has gone
    /// past is ignored: an approval taken here, or a request approved here
    /// read back as pending.
    pub fn apply_remote(&self, r: &ApprovalRequest) {
        // Checked and indexed under one lock, so a take in between cannot
        // be undone.
        if !self.lock().update_remote(r) {
            return;
        }
        self.wake(r);
    }

    /// Waits up to `timeout` for request `id` to be decided: its state once
    /// approved, denied, expired or used; `None` when still pending then.
    pub async fn await_decision(
        &self,
        id: &ApprovalId,
        timeout: std::time::Duration,
    ) -> Result<Option<ApprovalState>, ApprovalError> {
        let mut decided = self.watch(id);
        let settled = |s: ApprovalState| (s != ApprovalState::Pending).then_some(s);
        // Decided before the watch began (here, or on another node sharing
        // the store and not yet taken in: the index learns it now, so the
        // approval can be taken)?
        let stored = self.get(id).await?;
        if let Some(s) = settled(stored.state) {
            self.apply_remote(&stored);
            return Ok(Some(s));
        }
        let wait = async {
            loop {
                if decided.changed().await.is_err() {
                    // Nobody will tell any more: only the deadline is left.
                    std::future::pending::<()>().await;
                }
                let state = *decided.borrow_and_update();
                if let Some(s) = state.and_then(settled) {
                    return s;
                }
            }
        };
        Ok(tokio::time::timeout(timeout, wait).await.ok())
    }

    /// Looks up an action that needs approval: takes an approval covering
    /// it, or finds its pending request, or prepares a new one (counted
    /// against the requester's filing limit). Protocol-neutral: every
    /// adapter asks the same question.
    pub fn consult(&self, a: &ActionToApprove<'_>, now: Timestamp) -> Consulted {
        let Some(route) = a.routes.iter().find_map(|r| self.route(r)) else {
            return Consulted::NoRoute;
        };
        if let Some(id) = self.take_approved(a.fingerprint, now) {
            return Consulted::Approved(id);
        }
        if let Some(id) = self.pending_for(a.fingerprint) {
            return Consulted::Waiting {
                id,
                route: route.clone(),
                new: None,
            };
        }
        if let Some(limit) = self.pending_limit {
            if self.lock().pending_of(&a.requester.subject) >= limit {
                return Consulted::TooManyPending(limit);
            }
        }
        if let Err(limit) = self.reserve_filing(&a.requester.subject, now) {
            return Consulted::TooMany(limit);
        }
        let request = ApprovalRequest {
            id: ApprovalId::new(),
            route: route.name.clone(),
            requester: a.requester.clone(),
            connection: a.connection.to_string(),
            session: a.session,
            statement_seq: a.seq,
            text: a.text.to_string(),
            params: a.params.to_vec(),
            fingerprint: a.fingerprint.to_string(),
            policies: a.policies.to_vec(),
            analysis: a.analysis.to_string(),
            reason: a.reason.map(str::to_string),
            created_at: now,
            expires_at: now.plus(route.request_ttl),
            state: ApprovalState::Pending,
            votes: Vec::new(),
            valid_until: None,
            used_at: None,
            max_rows: a.max_rows,
        };
        Consulted::Waiting {
            id: request.id.clone(),
            route: route.clone(),
            new: Some(Box::new(request)),
        }
    }

    /// The pending request for `fingerprint`, if the statement was already asked for.
    pub fn pending_for(&self, fingerprint: &str) -> Option<ApprovalId> {
        self.lock().pending_for(fingerprint)
    }

    /// Files a new request: logged, stored, indexed.
    pub async fn submit(&self, request: ApprovalRequest) -> Result<(), ApprovalError> {
        self.audit
            .append(vec![AuditEvent::approval_requested(&request)])
            .await?;
        self.store.save_approval(&request).await?;
        self.index_request(&request);
        self.notify("approval_requested", &request);
        Ok(())
    }

    /// Marks an approval taken with [`Self::take_approved`] as used.
    /// One conditional update in the store: across every node sharing it,
    /// an approval is used once; `AlreadyUsed` when it was not approved.
    pub async fn mark_used(&self, id: &ApprovalId, now: Timestamp) -> Result<(), ApprovalError> {
        if self.store.use_approval(id, now).await? {
            Ok(())
        } else {
            Err(ApprovalError::AlreadyUsed(id.clone()))
        }
    }

    /// One request.
    pub async fn get(&self, id: &ApprovalId) -> Result<ApprovalRequest, ApprovalError> {
        self.store
            .approval(id)
            .await?
            .ok_or_else(|| ApprovalError::NotFound(id.clone()))
    }

    /// Requests, newest first.
    pub async fn list(
        &self,
        state: Option<ApprovalState>,
        limit: u32,
    ) -> Result<Vec<ApprovalRequest>, ApprovalError> {
        Ok(self.store.list_approvals(state, limit).await?)
    }

    /// `voter` approves or denies request `id`: checked against its route,
    /// logged durably, then stored and made effective.
    pub async fn vote(
        &self,
        id: &ApprovalId,
        voter: &Identity,
        approve: bool,
        comment: &str,
    ) -> Result<ApprovalRequest, ApprovalError> {
        let mut r = self.get(id).await?;
        let route = self
            .routes
            .get(&r.route)
            .ok_or_else(|| ApprovalError::UnknownRoute(r.id.clone(), r.route.clone()))?;
        let now = Timestamp::now();
        let was = r.state;
        let was_votes = r.votes.len();
        let outcome = r.vote(route, voter, approve, comment, now);
        if r.state == ApprovalState::Expired && was != ApprovalState::Expired {
            self.expire(r.clone(), was).await?;
        }
        outcome?;
        let vote = r.votes.last().cloned().ok_or_else(|| {
            // `vote` succeeded, so it pushed a vote.
            ApprovalError::NotFound(r.id.clone())
        })?;
        self.audit
            .append(vec![AuditEvent::approval_decided(&r, &vote)])
            .await?;
        // Conditional on the request as read: of two approvers voting at
        // once on different nodes, one vote lands and the other is told to
        // read again (its event is in the log, with its state as voted).
        if !self.store.update_approval(&r, was, was_votes).await? {
            return Err(ApprovalError::Conflict(r.id.clone()));
        }
        self.index_request(&r);
        self.wake(&r);
        self.notify(
            if approve {
                "approval_approved"
            } else {
                "approval_denied"
            },
            &r,
        );
        Ok(r)
    }

    async fn expire(
        &self,
        mut r: ApprovalRequest,
        was: ApprovalState,
    ) -> Result<(), ApprovalError> {
        r.state = ApprovalState::Expired;
        self.audit
            .append(vec![AuditEvent::approval_expired(&r, was)])
            .await?;
        // Conditional: every node sharing the store sweeps the same
        // deadlines. One update lands; a node whose update does not (its
        // log saw the expiry too) takes the request as stored.
        if !self.store.update_approval(&r, was, r.votes.len()).await? {
            if let Some(stored) = self.store.approval(&r.id).await? {
                self.apply_remote(&stored);
            }
            return Ok(());
        }
        self.index_request(&r);
        self.wake(&r);
        self.notify("approval_expired", &r);
        Ok(())
    }

    /// Expires what lapsed by `now`; returns how many. The index says which
    /// (its deadlines), so the store is read only for those.
    pub async fn expire_due(&self, now: Timestamp) -> Result<usize, ApprovalError> {
        let due = self.lock().due(now);
        let mut n = 0;
        for id in due {
            let r = self.get(&id).await?;
            if r.lapsed(now) {
                let was = r.state;
                self.expire(r, was).await?;
                n += 1;
            } else {
                // Decided meanwhile: the index follows the store.
                self.index_request(&r);
            }
        }
        Ok(n)
    }
}
