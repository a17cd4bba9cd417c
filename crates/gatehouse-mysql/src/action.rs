//! One statement (or command) of a MySQL session, from its number to its
//! record: its text as records keep it (masked, or redacted when it holds
//! a password), its decision made durable before anything of it reaches
//! the server ([`Action::write_ahead`]), its result recorded once it ends.

use gatehouse_core::{
    ActionOutcome, ActionRecord, ApprovalId, DecisionRecord, MaskingSummary, Timestamp,
};
use gatehouse_session::{DecidedAction, Session};

/// An action under way.
pub(crate) struct Action {
    pub(crate) seq: u64,
    /// As records keep it.
    pub(crate) text: String,
    /// Its parameters as records keep them (masked).
    pub(crate) params: Vec<Option<String>>,
    /// `simple` (a query) or `extended` (a prepared statement).
    flavour: &'static str,
    started: Timestamp,
    clock: std::time::Instant,
}

impl Action {
    /// The session's next action, starting now.
    pub(crate) fn begin(
        session: &Session,
        text: String,
        flavour: &'static str,
        params: Vec<Option<String>>,
    ) -> Self {
        Self {
            seq: session.next_seq(),
            text,
            params,
            flavour,
            started: Timestamp::now(),
            clock: std::time::Instant::now(),
        }
    }

    /// Makes `decision` (and the approval it runs on) durable.
    pub(crate) async fn write_ahead(
        &self,
        session: &Session,
        decision: &DecisionRecord,
        approval: Option<ApprovalId>,
    ) -> Result<(), ()> {
        let mut w = session.write_ahead();
        w.decided(DecidedAction {
            seq: self.seq,
            flavour: self.flavour,
            text: &self.text,
            parameters: self.params.len(),
            decision,
        });
        if let Some(id) = approval {
            w.take(id);
        }
        session.commit(&mut w).await.map_err(|e| {
            tracing::error!(error = %e, "could not log a mysql statement; refusing it");
        })
    }

    /// Records how it ended.
    pub(crate) async fn finish(
        self,
        session: &Session,
        outcome: ActionOutcome,
        decision: DecisionRecord,
        masking: Option<MaskingSummary>,
    ) {
        let record = ActionRecord {
            session_id: session.id(),
            seq: self.seq,
            protocol: self.flavour.into(),
            text: self.text,
            params: self.params,
            started_at: self.started,
            duration_us: self.clock.elapsed().as_micros() as u64,
            outcome,
            decision: Some(decision),
            masking,
            exchange: None,
        };
        if session.finished(record).await.is_err() {
            tracing::error!("session recorder stopped; a mysql statement is not recorded");
        }
    }
}
