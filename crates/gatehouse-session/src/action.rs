//! One action of a session, from its number to its record, the same for
//! every protocol: its text and parameters as records keep them (masked),
//! when it started, its decision made durable ([`Action::write_ahead`])
//! before anything of it reaches the resource, and its result recorded
//! once it ends ([`Action::finish`]).

use crate::{Committed, Session, SessionError, WriteAhead};
use gatehouse_core::{
    ActionOutcome, ActionRecord, ApprovalId, DecisionRecord, HttpExchange, MaskingSummary,
    StreamRecord, Timestamp,
};

/// An action under way.
pub struct Action {
    seq: u64,
    flavour: &'static str,
    text: String,
    params: Vec<Option<String>>,
    started: Timestamp,
    clock: std::time::Instant,
}

/// What a finished action's record carries besides its outcome.
#[derive(Default)]
pub struct Finished {
    /// What masking did to its results.
    pub masking: Option<MaskingSummary>,
    /// Its stream (a shell, a forwarded connection): bytes, recording.
    pub stream: Option<StreamRecord>,
}

impl Finished {
    /// A finished stream's record.
    pub fn stream(stream: StreamRecord) -> Self {
        Self {
            stream: Some(stream),
            ..Self::default()
        }
    }

    /// What masking did, if anything.
    pub fn masking(masking: Option<MaskingSummary>) -> Self {
        Self {
            masking,
            ..Self::default()
        }
    }
}

impl Action {
    /// The session's next action, starting now. `flavour`: how it was sent
    /// (`simple`, `extended`, `ssh`…), what records call its protocol;
    /// `text` and `params` as records keep them (masked).
    pub fn begin(
        session: &Session,
        flavour: &'static str,
        text: String,
        params: Vec<Option<String>>,
    ) -> Self {
        Self {
            seq: session.next_seq(),
            flavour,
            text,
            params,
            started: Timestamp::now(),
            clock: std::time::Instant::now(),
        }
    }

    /// Its number in the session.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Its text as records keep it.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Its parameters as records (and approvers) see them.
    pub fn params(&self) -> &[Option<String>] {
        &self.params
    }

    /// When it started.
    pub fn started(&self) -> Timestamp {
        self.started
    }

    /// Makes `decision` (and the approval it runs on) durable: nothing of
    /// the action may reach the resource before this returns `Ok`.
    pub async fn write_ahead(
        &self,
        session: &Session,
        decision: &DecisionRecord,
        approval: Option<ApprovalId>,
    ) -> Result<(), SessionError> {
        let mut w = self.batch(session, decision, approval, false);
        session.commit(&mut w).await.inspect_err(|e| {
            tracing::error!(error = %e, flavour = self.flavour, "could not log an action; refusing it");
        })
    }

    /// [`Action::write_ahead`], except that an action that only reads
    /// (`reads_only`: the adapter's analysis says so, conservatively) is
    /// only queued: the adapter may forward it at once, and must wait for
    /// [`Committed::Reads`] before anything of its answer reaches the caller.
    pub async fn write_ahead_overlapping(
        &self,
        session: &Session,
        decision: &DecisionRecord,
        approval: Option<ApprovalId>,
        reads_only: bool,
    ) -> Result<Committed, SessionError> {
        let mut w = self.batch(session, decision, approval, reads_only);
        session.commit_overlapping(&mut w).await.inspect_err(|e| {
            tracing::error!(error = %e, flavour = self.flavour, "could not log an action; refusing it");
        })
    }

    fn batch(
        &self,
        session: &Session,
        decision: &DecisionRecord,
        approval: Option<ApprovalId>,
        reads_only: bool,
    ) -> WriteAhead {
        let mut w = session.write_ahead();
        w.decided(crate::DecidedAction {
            seq: self.seq,
            flavour: self.flavour,
            text: &self.text,
            parameters: self.params.len(),
            decision,
            reads_only,
        });
        if let Some(id) = approval {
            w.take(id);
        }
        w
    }

    /// Records how it ended.
    pub async fn finish(
        self,
        session: &Session,
        outcome: ActionOutcome,
        decision: DecisionRecord,
        finished: Finished,
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
            masking: finished.masking,
            exchange: finished.stream.map(|s| HttpExchange {
                stream: Some(s),
                ..HttpExchange::default()
            }),
        };
        if session.finished(record).await.is_err() {
            tracing::error!("session recorder stopped; an action is not recorded");
        }
    }

    /// Records it as ended with an error `code` and `message`.
    pub async fn failed(
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
        self.finish(session, outcome, decision, Finished::default())
            .await;
    }
}
