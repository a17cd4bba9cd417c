//! Statements that need approval: file a request, or run on one.
//!
//! An approval covers one exact statement (see
//! `gatehouse_core::statement_fingerprint`) and is taken when used, so it
//! runs at most once.

use super::{refusal, Gate, Verdict};
use gatehouse_core::{
    statement_fingerprint, ApprovalId, ApprovalMode, ApprovalRequest, ApprovalRoute, ApprovalState,
    SessionId, Timestamp,
};
use gatehouse_sql::StatementAnalysis;
use std::sync::Arc;

/// What a statement does to an approval; the relay makes it durable before
/// anything of the statement is forwarded.
#[derive(Clone, Debug)]
pub(crate) enum ApprovalStep {
    /// A new request (its session, number and recorded text are filled in
    /// by the tracker).
    File(Box<ApprovalRequest>),
    /// The statement runs on this approval, which is now used.
    Use(ApprovalId),
}

impl Gate {
    /// For a `review` verdict on a simple-protocol statement: the verdict
    /// when an approval covers it (allowed, using it), or the refusal naming
    /// its request (filed now, or pending already). `None`: no route of the
    /// verdict is configured for requests.
    pub(super) fn approval_verdict(
        &self,
        sql: &str,
        statements: &[Arc<StatementAnalysis>],
        review: &Verdict,
    ) -> Option<Verdict> {
        let desk = self.settings.approvals.as_ref()?;
        let route = review
            .review_routes
            .iter()
            .filter_map(|r| desk.route(r))
            .find(|r| r.mode == ApprovalMode::Request)?;
        let now = Timestamp::now();
        let fingerprint =
            statement_fingerprint(&self.identity.subject, &self.connection, "simple", sql, &[]);
        if let Some(id) = desk.take_approved(&fingerprint, now) {
            let decision = self.decision(statements, "simple", true);
            let mut v = self.checked(statements, self.verdict(decision));
            v.record.reason = Some(format!("approved: request {id}"));
            v.approval = Some(ApprovalStep::Use(id));
            return Some(v);
        }
        let (id, step) = match desk.pending_for(&fingerprint) {
            Some(id) => (id, None),
            None => {
                let request = ApprovalRequest {
                    id: ApprovalId::new(),
                    route: route.name.clone(),
                    requester: self.identity.clone(),
                    connection: self.connection.clone(),
                    session: SessionId::default(),
                    statement_seq: 0,
                    text: String::new(),
                    params: Vec::new(),
                    fingerprint,
                    policies: review.record.policies.clone(),
                    reason: self.reason.clone(),
                    created_at: now,
                    expires_at: now.plus(route.request_ttl),
                    state: ApprovalState::Pending,
                    votes: Vec::new(),
                    valid_until: None,
                    used_at: None,
                };
                (
                    request.id.clone(),
                    Some(ApprovalStep::File(Box::new(request))),
                )
            }
        };
        let mut v = review.clone();
        let reason = v.record.reason.clone().unwrap_or_default();
        v.record.reason = Some(format!("{reason}: request {id}"));
        v.refusal = Some(requested(&reason, &id, route, &review.record.policies));
        v.approval = step;
        Some(v)
    }
}

/// The error for a statement waiting for approval: its request id and what to do.
fn requested(
    reason: &str,
    id: &ApprovalId,
    route: &ApprovalRoute,
    policies: &[String],
) -> super::Refusal {
    refusal(
        "42501",
        format!("gatehouse: approval required: {reason}: request {id}"),
        Some(&format!(
            "decided by policy {}; approvers: members of {}",
            policies.join(", "),
            route.approver_groups.join(", ")
        )),
        &format!(
            "ask an approver to run `gatehouse approvals approve {id}`; once approved, run exactly \
             this statement again on this connection (within {}), and it runs once",
            humantime::format_duration(route.valid_for)
        ),
    )
}
