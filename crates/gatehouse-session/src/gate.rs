//! One action → the policy's decision → forward, refuse or hold, with
//! approvals, the same way for every protocol: an approval covering the
//! exact action is taken; otherwise a request is filed (durably, before
//! the caller hears of it) and, in hold mode, waited for. The adapter
//! supplies the policy call and the action's recorded text and
//! fingerprint, and words the [`Refusal`] in its protocol's form.

use crate::Session;
use gatehouse_core::{
    ActionToApprove, ApprovalId, ApprovalMode, ApprovalState, Consulted, Decided, DecisionRecord,
};
use gatehouse_policy::{Decision, PolicyMode};
use std::time::Duration;

/// Why an action is refused, for the adapter to word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The policy refused it (or it needed approval and none can be filed).
    Denied {
        /// The policy's reason.
        reason: String,
        /// The deciding policies.
        policies: Vec<String>,
    },
    /// It needs approval; request `id` was filed (request mode): ask an
    /// approver, then send it again.
    ApprovalRequired {
        /// Why it needs approval.
        reason: String,
        /// The request filed.
        id: ApprovalId,
        /// Who may approve.
        approver_groups: Vec<String>,
        /// How long an approval stays usable.
        valid_for: Duration,
    },
    /// It was held for request `id`, which was denied, expired or not
    /// decided in time.
    ApprovalOutcome {
        /// The request.
        id: ApprovalId,
        /// `denied`, `expired` or `not decided in time`.
        outcome: &'static str,
    },
    /// The caller filed as many requests this minute as it may.
    TooManyFiled(String),
    /// The caller has as many requests pending as it may.
    TooManyPending(String),
    /// The evidence log or the approval desk failed: nothing goes ahead.
    EvidenceUnavailable,
}

impl Refusal {
    /// The refusal in words a caller can act on.
    pub fn message(&self) -> String {
        match self {
            Self::Denied { reason, .. } => format!("permission denied: {reason}"),
            Self::ApprovalRequired {
                reason,
                id,
                approver_groups,
                valid_for,
            } => format!(
                "approval required: {reason}; request {id} was filed: ask a member of {} to run \
                 `gatehouse approvals approve {id}`, then run it again within {} of the approval",
                approver_groups.join(", "),
                humantime::format_duration(*valid_for)
            ),
            Self::ApprovalOutcome { id, outcome } => {
                format!("approval request {id} was {outcome}; nothing was run")
            }
            Self::TooManyFiled(why) | Self::TooManyPending(why) => {
                format!("approval required, and no request filed: {why}")
            }
            Self::EvidenceUnavailable => {
                "gatehouse could not write its evidence log, so nothing was run".into()
            }
        }
    }
}

/// The gate's answer.
#[must_use = "a verdict says whether the action may be forwarded"]
pub enum Verdict {
    /// Forward it; `approval` is used once it goes ahead.
    Forward {
        /// The decision as recorded.
        record: DecisionRecord,
        /// The approval it runs on.
        approval: Option<ApprovalId>,
    },
    /// Refuse it.
    Refuse {
        /// The decision as recorded.
        record: DecisionRecord,
        /// Why.
        refusal: Refusal,
    },
    /// Held for approval (hold mode): tell the caller, then [`Held::wait`].
    Held(Held),
}

/// An action waiting for a human: its request is filed and durable.
pub struct Held {
    id: ApprovalId,
    timeout: Duration,
    approver_groups: Vec<String>,
    valid_for: Duration,
    fingerprint: String,
    reason: String,
    base: DecisionRecord,
}

/// What an approval of one action is asked with.
pub struct ApprovalAsk<'a> {
    /// The action's number in the session.
    pub seq: u64,
    /// The action as recorded (masked).
    pub text: &'a str,
    /// Its parameters as an approver sees them (masked).
    pub params: &'a [Option<String>],
    /// What the approval is bound to.
    pub fingerprint: &'a str,
    /// Masks what records keep (the reason may quote the action).
    pub mask: &'a (dyn Fn(&str) -> String + Sync),
}

/// The decision as the evidence log keeps it.
pub fn record(d: &Decision, mode: PolicyMode, shadow: bool) -> DecisionRecord {
    let decided_as = if shadow {
        PolicyMode::Audit
    } else {
        PolicyMode::Enforce
    };
    DecisionRecord {
        decision: d.recorded(decided_as),
        policies: d.policies().to_vec(),
        mode: mode.recorded(),
        reason: d.reason().map(str::to_string),
    }
}

/// Decides an action: `decide_as(approved)` asks the policy. A refusal in
/// audit mode is recorded and let through.
pub async fn decide(
    session: &Session,
    mode: PolicyMode,
    decide_as: &(impl Fn(bool) -> Decision + Sync),
    ask: &ApprovalAsk<'_>,
) -> Verdict {
    let decision = decide_as(false);
    match (&decision, mode) {
        (Decision::Allow { .. }, _) => Verdict::Forward {
            record: record(&decision, mode, false),
            approval: None,
        },
        (_, PolicyMode::Audit) => Verdict::Forward {
            record: record(&decision, mode, true),
            approval: None,
        },
        (Decision::Deny { reason, policies }, PolicyMode::Enforce) => Verdict::Refuse {
            refusal: Refusal::Denied {
                reason: reason.clone(),
                policies: policies.clone(),
            },
            record: record(&decision, mode, false),
        },
        (
            Decision::Review {
                routes,
                reason,
                policies,
            },
            PolicyMode::Enforce,
        ) => {
            let base = record(&decision, mode, false);
            let identity = session.identity();
            let asked = ActionToApprove {
                routes,
                requester: identity,
                connection: session.connection(),
                session: session.id(),
                seq: ask.seq,
                text: ask.text,
                params: ask.params,
                fingerprint: ask.fingerprint,
                policies,
                analysis: &(ask.mask)(reason),
                reason: None,
                max_rows: None,
            };
            ask_approval(session, &asked, base, decide_as).await
        }
    }
}

/// An action the policy said needs approval (`base` its decision as
/// recorded): an approval covering it is taken (and it is decided again as
/// approved), or its request is filed (or found pending) and it is refused
/// naming it (request mode) or held (hold mode). For adapters that decide
/// the rest themselves; [`decide`] does all of it.
pub async fn ask_approval(
    session: &Session,
    asked: &ActionToApprove<'_>,
    mut base: DecisionRecord,
    decide_as: &impl Fn(bool) -> Decision,
) -> Verdict {
    let reason = base.reason.clone().unwrap_or_default();
    let refuse = |mut base: DecisionRecord, why: String, refusal: Refusal| {
        base.reason = Some(why);
        Verdict::Refuse {
            record: base,
            refusal,
        }
    };
    let (id, route) = match session.consult(asked) {
        Consulted::Approved(id) => return approved(id, base, decide_as),
        Consulted::NoRoute => {
            let why = format!("{reason}, and no approval route it names is configured");
            let refusal = Refusal::Denied {
                reason: why.clone(),
                policies: base.policies.clone(),
            };
            return refuse(base, why, refusal);
        }
        Consulted::TooMany(limit) => {
            let who = &asked.requester.subject;
            let why = format!(
                "{reason}: not filed: {who} filed {limit} approval requests in the last minute, the most it may"
            );
            return refuse(base, why.clone(), Refusal::TooManyFiled(why));
        }
        Consulted::TooManyPending(limit) => {
            let who = &asked.requester.subject;
            let why = format!(
                "{reason}: not filed: {who} has {limit} approval requests pending, the most it may"
            );
            return refuse(base, why.clone(), Refusal::TooManyPending(why));
        }
        Consulted::Waiting { id, route, new } => {
            if let Some(request) = new {
                let mut w = session.write_ahead();
                w.file(request);
                if let Err(e) = session.commit(&mut w).await {
                    tracing::error!(error = %e, "could not file an approval request");
                    return Verdict::Refuse {
                        record: base,
                        refusal: Refusal::EvidenceUnavailable,
                    };
                }
            }
            (id, route)
        }
    };
    base.reason = Some(format!("{reason}: request {id}"));
    if route.mode == ApprovalMode::Request {
        return Verdict::Refuse {
            record: base,
            refusal: Refusal::ApprovalRequired {
                reason,
                id,
                approver_groups: route.approver_groups.clone(),
                valid_for: route.valid_for,
            },
        };
    }
    Verdict::Held(Held {
        id,
        timeout: route.hold_timeout,
        approver_groups: route.approver_groups.clone(),
        valid_for: route.valid_for,
        fingerprint: asked.fingerprint.to_string(),
        reason,
        base,
    })
}

impl Held {
    /// The request the action waits for.
    pub fn id(&self) -> &ApprovalId {
        &self.id
    }

    /// How long it waits at most.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Refuses the action without waiting (it cannot wait: a forwarded
    /// connection opening), naming its request as request mode does.
    pub fn refuse(self) -> Verdict {
        Verdict::Refuse {
            refusal: Refusal::ApprovalRequired {
                reason: self.reason,
                id: self.id,
                approver_groups: self.approver_groups,
                valid_for: self.valid_for,
            },
            record: self.base,
        }
    }

    /// Waits for the decision: forward on approval (decided again as
    /// approved: plain forbids still apply), refuse otherwise. Never
    /// [`Verdict::Held`].
    pub async fn wait(
        self,
        session: &Session,
        decide_as: &(impl Fn(bool) -> Decision + Sync),
    ) -> Verdict {
        let Held {
            id,
            timeout,
            fingerprint,
            reason,
            mut base,
            ..
        } = self;
        let state = match session.await_decision(&id, timeout).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "could not read an approval request");
                return Verdict::Refuse {
                    record: base,
                    refusal: Refusal::EvidenceUnavailable,
                };
            }
        };
        if state == Some(ApprovalState::Approved) {
            if let Some(taken) = session.take_approved(&fingerprint) {
                return approved(taken, base, decide_as);
            }
        }
        let outcome = match state {
            Some(ApprovalState::Denied) => "denied",
            Some(ApprovalState::Expired) => "expired",
            _ => "not decided in time",
        };
        base.reason = Some(format!("{reason}: request {id}: {outcome}"));
        Verdict::Refuse {
            record: base,
            refusal: Refusal::ApprovalOutcome { id, outcome },
        }
    }
}

/// An approval was taken: decided again as approved (plain forbids still apply).
fn approved(
    id: ApprovalId,
    mut base: DecisionRecord,
    decide_as: &impl Fn(bool) -> Decision,
) -> Verdict {
    match decide_as(true) {
        Decision::Allow { policies, .. } => Verdict::Forward {
            record: DecisionRecord {
                decision: Decided::Allow,
                policies,
                mode: base.mode,
                reason: Some(format!("approved: request {id}")),
            },
            approval: Some(id),
        },
        d => {
            let reason = d.reason().unwrap_or_default().to_string();
            base.decision = d.recorded(PolicyMode::Enforce);
            base.reason = Some(reason.clone());
            Verdict::Refuse {
                refusal: Refusal::Denied {
                    reason,
                    policies: d.policies().to_vec(),
                },
                record: base,
            }
        }
    }
}
