//! One action of an SSH session, from its number to its record: its text
//! and parameters as records keep them (masked), and when it started. Its
//! decision is made durable ([`Action::write_ahead`]) before anything of
//! it reaches the host; its result is recorded once it ends.

use gatehouse_core::{
    ActionOutcome, ActionRecord, ApprovalId, DecisionRecord, HttpExchange, StreamRecord, Timestamp,
};
use gatehouse_session::{DecidedAction, Session};

/// An action under way.
pub(crate) struct Action {
    pub(crate) seq: u64,
    /// As records keep it (masked).
    pub(crate) text: String,
    /// Its parameters as an approver and records see them (masked).
    pub(crate) params: Vec<Option<String>>,
    /// When it started.
    pub(crate) started: Timestamp,
    clock: std::time::Instant,
}

impl Action {
    /// The session's next action, starting now.
    pub(crate) fn begin(session: &Session, text: String, params: Vec<Option<String>>) -> Self {
        Self {
            seq: session.next_seq(),
            text,
            params,
            started: Timestamp::now(),
            clock: std::time::Instant::now(),
        }
    }

    /// Makes `decision` (and the approval it runs on) durable: nothing of
    /// the action may reach the host before this returns `Ok`.
    pub(crate) async fn write_ahead(
        &self,
        session: &Session,
        decision: &DecisionRecord,
        approval: Option<ApprovalId>,
    ) -> Result<(), ()> {
        let mut w = session.write_ahead();
        w.decided(DecidedAction {
            seq: self.seq,
            flavour: "ssh",
            text: &self.text,
            parameters: self.params.len(),
            decision,
        });
        if let Some(id) = approval {
            w.take(id);
        }
        session.commit(&mut w).await.map_err(|e| {
            tracing::error!(error = %e, "could not log an ssh action; refusing it");
        })
    }

    /// Records how it ended.
    pub(crate) async fn finish(
        self,
        session: &Session,
        outcome: ActionOutcome,
        decision: DecisionRecord,
        stream: Option<StreamRecord>,
    ) {
        let record = ActionRecord {
            session_id: session.id(),
            seq: self.seq,
            protocol: "ssh".into(),
            text: self.text,
            params: self.params,
            started_at: self.started,
            duration_us: self.clock.elapsed().as_micros() as u64,
            outcome,
            decision: Some(decision),
            masking: None,
            exchange: stream.map(|s| HttpExchange {
                stream: Some(s),
                ..HttpExchange::default()
            }),
        };
        if session.finished(record).await.is_err() {
            tracing::error!("session recorder stopped; an ssh action is not recorded");
        }
    }

    /// Records it as ended with an error `code` and `message`.
    pub(crate) async fn failed(
        self,
        session: &Session,
        code: &str,
        message: String,
        decision: DecisionRecord,
    ) {
        let outcome = ActionOutcome::Error {
            code: code.into(),
            message,
        };
        self.finish(session, outcome, decision, None).await;
    }
}
