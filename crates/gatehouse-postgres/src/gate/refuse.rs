//! The gate's refusals as verdicts: the decision a record keeps, and the
//! client's error from `refusals.rs`.

use super::{Gate, Verdict};
use crate::refusals;
use gatehouse_core::{Decided, DecidedIn, DecisionRecord};
use gatehouse_sql::SqlError;

impl Gate {
    /// Refuses with `reason` (no policy involved: the gateway cannot decide).
    pub(crate) fn refuse(&self, reason: String) -> Verdict {
        self.refuse_reason(Decided::Deny, Vec::new(), reason)
    }

    pub(super) fn refuse_reason(
        &self,
        decision: Decided,
        policies: Vec<String>,
        reason: String,
    ) -> Verdict {
        let refusal = if decision == Decided::Review {
            refusals::approval_unavailable(&reason, &policies)
        } else {
            refusals::denied(&reason, &policies)
        };
        Verdict::decided(
            DecisionRecord {
                decision,
                policies,
                mode: DecidedIn::Enforce,
                reason: Some(reason),
            },
            Some(refusal),
        )
    }

    /// Refuses what column masking could not follow; in every policy mode,
    /// since masking is not a policy being tried out.
    pub(super) fn masking_refusal(&self, reason: String) -> Verdict {
        let refusal = refusals::masking_denied(&reason, &self.connection, &self.identity.subject);
        Verdict::decided(
            DecisionRecord {
                decision: Decided::Deny,
                policies: Vec::new(),
                mode: DecidedIn::Enforce,
                reason: Some(format!("column masking: {reason}")),
            },
            Some(refusal),
        )
    }

    /// Refuses a change of a pinned setting, in every policy mode.
    pub(super) fn settings_refusal(&self, reason: String) -> Verdict {
        let refusal = refusals::setting_pinned(&reason);
        Verdict::decided(
            DecisionRecord {
                decision: Decided::Deny,
                policies: Vec::new(),
                mode: DecidedIn::Enforce,
                reason: Some(reason),
            },
            Some(refusal),
        )
    }

    pub(super) fn unparseable(&self, e: &SqlError) -> Verdict {
        if let SqlError::TooLong { .. } = e {
            return Verdict::decided(
                DecisionRecord {
                    decision: Decided::Deny,
                    policies: Vec::new(),
                    mode: DecidedIn::Enforce,
                    reason: Some(e.to_string()),
                },
                Some(refusals::statement_too_long(e)),
            );
        }
        // Unparseable statements are refused in every mode: what cannot be
        // understood cannot be decided.
        Verdict::decided(
            DecisionRecord {
                decision: Decided::Deny,
                policies: Vec::new(),
                mode: self.settings.policy.mode().recorded(),
                reason: Some(e.to_string()),
            },
            Some(refusals::unparseable(e)),
        )
    }
}
