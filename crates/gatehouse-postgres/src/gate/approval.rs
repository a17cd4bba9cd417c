//! Statements that need approval: file a request, or run on one.
//!
//! An approval covers one exact statement (see
//! `gatehouse_core::statement_fingerprint`) and is taken when used, so it
//! runs at most once.

use super::{Flavour, Gate, Hold, HoldOutcome, Verdict};
use crate::refusals;
use gatehouse_core::{
    statement_fingerprint, ActionToApprove, ApprovalId, ApprovalMode, ApprovalRoute, Consulted,
    Decided, SessionId,
};
use gatehouse_session::ApprovalStep;
use gatehouse_sql::StatementAnalysis;
use std::sync::Arc;

impl Gate {
    /// What an approval of `sql` with these parameters is bound to.
    pub(crate) fn fingerprint(
        &self,
        protocol: Flavour,
        sql: &str,
        params: &[Option<&[u8]>],
    ) -> String {
        statement_fingerprint(
            &self.identity.subject,
            &self.connection,
            protocol.as_str(),
            sql,
            params,
        )
    }

    /// Decides statements whose exact form is known (a Query, or an Execute
    /// with its parameters): a `review` goes to the approval desk, bound to
    /// `fingerprint` (computed only then). Also says whether the verdict
    /// depends on the desk (then it must not be cached).
    pub(crate) fn decide_approvable(
        &self,
        statements: &[Arc<StatementAnalysis>],
        protocol: Flavour,
        fingerprint: impl FnOnce() -> String,
    ) -> (Verdict, bool) {
        let v = self.decide(statements, protocol);
        if v.record.decision != Decided::Review {
            if v.row_cap.as_ref().is_some_and(|c| c.approval.is_some()) && v.refusal.is_none() {
                return (self.over_cap_approved(v, fingerprint()), true);
            }
            return (v, false);
        }
        let v = self
            .approval_verdict(protocol, fingerprint(), statements, &v)
            .unwrap_or(v);
        (v, true)
    }

    /// For a `review` verdict: the verdict when an approval covers it
    /// (allowed, using it), or the refusal naming its request (filed now, or
    /// pending already), held in hold mode. `None`: no approval desk, or no
    /// route of the verdict is configured.
    fn approval_verdict(
        &self,
        protocol: Flavour,
        fingerprint: String,
        statements: &[Arc<StatementAnalysis>],
        review: &Verdict,
    ) -> Option<Verdict> {
        let session = self.session.as_ref().filter(|s| s.takes_approvals())?;
        let asked = self.asked(
            &review.review_routes,
            &fingerprint,
            &review.record.policies,
            review.record.reason.as_deref().unwrap_or_default(),
        );
        let (id, route, step) = match session.consult(&asked) {
            Consulted::NoRoute => return None,
            Consulted::Approved(id) => {
                let decision = self.decision(statements, protocol, true);
                // A person approved exactly this statement: no row cap.
                let mut allowed = self.verdict(decision);
                allowed.row_cap = None;
                let mut v = self.checked(statements, allowed);
                if v.refusal.is_none() {
                    v.record.reason = Some(format!("approved: request {id}"));
                    v.approval = Some(ApprovalStep::Use(id));
                }
                // Refused even approved (a plain forbid, column masking): the
                // approval is not used; it is out of the index until a restart
                // or its expiry, which only ever refuses more.
                return Some(v);
            }
            Consulted::TooMany(limit) => {
                let mut v = review.clone();
                let reason = format!(
                    "{}: not filed: {} filed {limit} approval requests in the last minute, the \
                     most it may",
                    v.record.reason.clone().unwrap_or_default(),
                    self.identity.subject
                );
                v.record.reason = Some(reason.clone());
                v.refusal = Some(refusals::too_many_filings(&reason));
                return Some(v);
            }
            Consulted::TooManyPending(limit) => {
                let mut v = review.clone();
                let reason = format!(
                    "{}: not filed: {} has {limit} approval requests pending, the most it may",
                    v.record.reason.clone().unwrap_or_default(),
                    self.identity.subject
                );
                v.record.reason = Some(reason.clone());
                v.refusal = Some(refusals::too_many_pending(&reason));
                return Some(v);
            }
            Consulted::Waiting { id, route, new } => (id, route, new.map(ApprovalStep::File)),
        };
        let route = &route;
        let mut v = review.clone();
        let reason = v.record.reason.clone().unwrap_or_default();
        v.record.reason = Some(format!("{reason}: request {id}"));
        v.refusal = Some(refusals::approval_requested(
            &reason,
            &id,
            route,
            &review.record.policies,
        ));
        if route.mode == ApprovalMode::Hold {
            v.hold = Some(Hold {
                notice: refusals::held_notice(&reason, &id, route),
                id: id.clone(),
                timeout: route.hold_timeout,
            });
        }
        v.approval = step;
        Some(v)
    }

    /// The refusal for a held statement that was not approved.
    pub(crate) fn hold_refusal(
        &self,
        review: &Verdict,
        id: &ApprovalId,
        outcome: HoldOutcome,
    ) -> Verdict {
        let mut v = review.clone();
        let reason = v.record.reason.clone().unwrap_or_default();
        v.record.reason = Some(format!(
            "{reason}: request {id}: {}",
            match outcome {
                HoldOutcome::Denied => "denied",
                HoldOutcome::Expired => "expired",
                HoldOutcome::Cancelled => "cancelled by the client",
                _ => "not decided in time",
            }
        ));
        v.refusal = Some(refusals::hold_ended(id, outcome, &reason));
        v.hold = None;
        v.approval = None;
        v
    }

    /// A write under a row cap whose policy files over-cap writes for
    /// approval: bound to `fingerprint`, and, when such an approval covers
    /// it, capped at the rows approved (taking the approval).
    fn over_cap_approved(&self, mut v: Verdict, fingerprint: String) -> Verdict {
        let taken = self
            .session
            .as_ref()
            .and_then(|s| s.take_approved_rows(&fingerprint));
        if let (Some((id, rows)), Some(cap)) = (taken, v.row_cap.as_mut()) {
            let rows = rows.unwrap_or(cap.rows);
            v.record.reason = Some(format!(
                "approved: request {id}: it may change at most {rows} rows"
            ));
            cap.rows = rows;
            cap.approval = None;
            v.approval = Some(ApprovalStep::Use(id));
        }
        v.cap_fingerprint = Some(fingerprint);
        v
    }

    /// A write over its row cap whose policy files such writes with route
    /// `route`: files the request (or finds one pending) and says so. `None`:
    /// nothing can be filed (no desk, no such route, too many filed).
    pub(crate) fn file_over_cap(
        &self,
        route: &str,
        cap: &gatehouse_policy::RowCap,
        fingerprint: &str,
        (what, changed): (&str, u64),
    ) -> Option<(
        ApprovalId,
        ApprovalRoute,
        Option<Box<gatehouse_core::ApprovalRequest>>,
    )> {
        let session = self.session.as_ref().filter(|s| s.takes_approvals())?;
        let routes = [route.to_string()];
        let policies = [cap.policy.clone()];
        let analysis = format!("{}: {what}", self.identity.subject);
        let asked = ActionToApprove {
            max_rows: Some(changed),
            ..self.asked(&routes, fingerprint, &policies, &analysis)
        };
        match session.consult(&asked) {
            Consulted::Waiting { id, route, new } => Some((id, route, new)),
            _ => None,
        }
    }

    /// What the approval desk is asked about a statement of this session:
    /// the session, number and recorded text are filled in by the tracker.
    fn asked<'a>(
        &'a self,
        routes: &'a [String],
        fingerprint: &'a str,
        policies: &'a [String],
        analysis: &'a str,
    ) -> ActionToApprove<'a> {
        ActionToApprove {
            routes,
            requester: &self.identity,
            connection: &self.connection,
            session: SessionId::default(),
            seq: 0,
            text: "",
            params: &[],
            fingerprint,
            policies,
            analysis,
            reason: self.reason.as_deref(),
            max_rows: None,
        }
    }
}
