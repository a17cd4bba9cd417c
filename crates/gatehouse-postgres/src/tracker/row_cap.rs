//! Row caps (`@max_rows` on a permit): a write runs so that it can be
//! undone, the gateway reads how many rows it changed from its command tag,
//! and undoes it, refusing it in its place, when that is more than the cap.
//!
//! - Simple protocol, outside a transaction: the gateway opens one
//!   (`BEGIN`, its answers not passed on) before the statement; within the
//!   cap it sends `COMMIT`, over it `ROLLBACK` and a poison, whose error is
//!   replaced by the refusal. The client sees the statement's own answers and
//!   one ReadyForQuery, exactly as without the cap. To know the transaction
//!   state the statement will run in, it waits until every earlier
//!   statement is answered.
//! - Simple protocol, inside the client's transaction: over the cap a poison
//!   aborts the transaction, as after any refused statement.
//! - Extended protocol: the Execute is followed by a Flush (the server then
//!   sends the tag at once); over the cap a poison Bind aborts the
//!   (implicit or explicit) transaction before the client's Sync can commit.
//!
//! While a capped statement runs, the client's next messages wait (a
//! barrier): nothing may run between the write and its undoing. The relay
//! lifts it once the gateway's own messages are written to the backend.

use super::pending::Pending;
use super::{Flavour, Flow, Tracker};
use crate::codec::msg::frontend as fe;
use crate::codec::write::{message, query};
use bytes::BytesMut;
use gatehouse_core::{ApprovalId, ApprovalRequest, ApprovalRoute};
use gatehouse_policy::RowCap;

/// When a capped simple Query may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Drained {
    /// Now: the transaction state is known.
    Go,
    /// Once the statements before it are answered.
    Wait,
    /// Not: extended-protocol messages without a Sync went before it.
    Refuse,
}

/// Where a capped statement is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stage {
    /// Sent; its tag not seen yet.
    Running,
    /// Within the cap.
    Within,
    /// Over the cap (the count is in its refusal).
    Over,
    /// The gateway's COMMIT is on its way (its tag is not the client's).
    Committing,
    /// The gateway's ROLLBACK is on its way (ditto).
    RollingBack,
    /// Its refusal replaces the poison's error.
    Refusing,
}

/// A capped statement in flight.
#[derive(Debug)]
pub(super) struct CapRun {
    pub(super) cap: RowCap,
    /// What an approval of it over the cap is bound to (its policy files
    /// such writes for approval).
    pub(super) fingerprint: Option<String>,
    /// The gateway opened the transaction (simple protocol, autocommit).
    pub(super) opened: bool,
    pub(super) stage: Stage,
}

impl Tracker {
    /// Whether the client's messages wait for a capped statement.
    pub(super) fn barrier(&self) -> bool {
        self.barrier
    }

    /// The relay wrote what the gateway sent to finish a capped statement:
    /// the client's messages go on.
    pub(crate) fn barrier_lifted(&mut self) {
        self.barrier = false;
    }

    /// A simple Query under a row cap, just queued alone, `body` as the
    /// client sent it: runs in a transaction the gateway can undo.
    pub(super) fn capped_query(
        &mut self,
        body: &[u8],
        cap: RowCap,
        fingerprint: Option<String>,
    ) -> Flow {
        // In a failed transaction it fails without changing anything.
        if self.tx_status == b'E' {
            return Flow::Forward;
        }
        let opened = self.tx_status == b'I';
        let Some(Pending::Statement(s)) = self.pending.back_mut() else {
            // Impossible (the statement was just queued); never run uncapped.
            return Flow::Replace(crate::gate::poison_query());
        };
        self.barrier = true;
        s.cap = Some(Box::new(CapRun {
            cap,
            fingerprint,
            opened,
            stage: Stage::Running,
        }));
        if !opened {
            return Flow::Forward;
        }
        // BEGIN first: its answers are the gateway's.
        let statement = self.pending.pop_back();
        self.pending.push_back(Pending::AddedQuery);
        self.pending.extend(statement);
        let mut out = BytesMut::with_capacity(body.len() + 32);
        query(&mut out, "BEGIN");
        message(&mut out, fe::QUERY, body);
        Flow::Replace(out)
    }

    /// When a capped Query may go: the transaction state it runs in must be
    /// known, from a ReadyForQuery after everything sent before it.
    pub(super) fn capped_query_may_go(&mut self) -> Drained {
        let ends_with_ready = self.pending.iter().any(|p| match p {
            Pending::Sync => true,
            Pending::Statement(s) => s.kind != Flavour::Extended,
            _ => false,
        });
        match (self.pending.is_empty(), self.unsynced, ends_with_ready) {
            (true, false, _) => Drained::Go,
            // Answered up to a ReadyForQuery still to come: then it goes.
            (false, _, true) => {
                self.barrier = true;
                self.drain_wait = true;
                Drained::Wait
            }
            // Extended-protocol messages without a Sync went before it: no
            // ReadyForQuery will tell the transaction state.
            _ => Drained::Refuse,
        }
    }

    /// An Execute under a row cap, `body` as the client sent it: a Flush
    /// follows, so its tag comes back before the client's Sync goes out.
    pub(super) fn capped_execute(
        &mut self,
        body: &[u8],
        cap: RowCap,
        fingerprint: Option<String>,
    ) -> Flow {
        let Some(Pending::Statement(s)) = self.pending.back_mut() else {
            // Impossible (the Execute was just queued); never run uncapped.
            return Flow::Replace(crate::gate::poison_bind());
        };
        self.barrier = true;
        s.cap = Some(Box::new(CapRun {
            cap,
            fingerprint,
            opened: false,
            stage: Stage::Running,
        }));
        let mut out = BytesMut::with_capacity(body.len() + 16);
        message(&mut out, fe::EXECUTE, body);
        message(&mut out, fe::FLUSH, &[]);
        Flow::Replace(out)
    }

    /// An ErrorResponse: a capped Execute of the same batch, still waiting
    /// for its tag, will not run (the batch failed), so the client's
    /// messages go on. An error of an earlier batch or of a simple Query
    /// skips nothing after a Sync.
    pub(super) fn capped_batch_failed(&mut self, resume: &mut Option<BytesMut>) {
        for p in self.pending.iter_mut() {
            match p {
                Pending::Sync => return,
                Pending::Statement(s) if s.kind != Flavour::Extended => return,
                Pending::Statement(s) => {
                    if let Some(run) = s.cap.as_mut().filter(|c| c.stage == Stage::Running) {
                        run.stage = Stage::Within;
                        *resume = Some(BytesMut::new());
                        return;
                    }
                }
                _ => {}
            }
        }
    }

    /// Whether the statement the next answer is for runs under a row cap.
    pub(super) fn front_capped(&self) -> bool {
        matches!(self.pending.front(), Some(Pending::Statement(s)) if s.cap.is_some())
    }

    /// A CommandComplete of a capped statement (`rows` from its tag): what
    /// becomes of it. `Some(flow)` replaces the usual handling.
    pub(super) fn capped_tag(
        &mut self,
        tag: &str,
        rows: Option<u64>,
        resume: &mut Option<BytesMut>,
        file: &mut Option<Box<ApprovalRequest>>,
    ) -> Option<Flow> {
        let filed = self.file_over_cap(tag, rows, file);
        let Some(Pending::Statement(s)) = self.pending.front_mut() else {
            return None;
        };
        let run = s.cap.as_mut()?;
        match run.stage {
            // The gateway's COMMIT or ROLLBACK: not the client's tag.
            Stage::Committing | Stage::RollingBack => return Some(Flow::Replace(BytesMut::new())),
            Stage::Running => {}
            _ => return None,
        }
        // A PREPARE of a capped write changes nothing; its EXECUTE is counted.
        let changed = if tag == "PREPARE" {
            0
        } else {
            rows.unwrap_or(u64::MAX)
        };
        if changed <= run.cap.rows {
            run.stage = Stage::Within;
            if s.kind == Flavour::Extended {
                *resume = Some(BytesMut::new());
            }
            return None;
        }
        run.stage = Stage::Over;
        let undone = match (s.kind, run.opened) {
            (Flavour::Extended, _) => crate::refusals::Undone::BatchAborted,
            (_, true) => crate::refusals::Undone::RolledBack,
            (_, false) => crate::refusals::Undone::TransactionAborted,
        };
        let refusal = crate::refusals::over_row_cap(tag, changed, &run.cap, undone, filed);
        s.error = Some((refusal.sqlstate.to_string(), refusal.message.clone()));
        s.refusal = Some(refusal);
        if s.kind == Flavour::Extended {
            // A poison aborts the transaction before the client's Sync.
            run.stage = Stage::Refusing;
            *resume = Some(crate::gate::poison_bind());
        }
        s.tags.push_str(tag);
        s.rows = rows;
        Some(Flow::Replace(BytesMut::new()))
    }

    /// The front statement is a capped one whose tag says it changed more
    /// rows than its cap, and its policy files such writes for approval:
    /// the request (filed in `file`, to be made durable before the refusal
    /// can reach the client), or the one already pending.
    fn file_over_cap(
        &mut self,
        tag: &str,
        rows: Option<u64>,
        file: &mut Option<Box<ApprovalRequest>>,
    ) -> Option<(ApprovalId, ApprovalRoute)> {
        let Some(Pending::Statement(s)) = self.pending.front() else {
            return None;
        };
        let run = s.cap.as_ref().filter(|r| r.stage == Stage::Running)?;
        let changed = rows.filter(|n| *n > run.cap.rows)?;
        let (route, fingerprint) = (run.cap.approval.as_ref()?, run.fingerprint.as_ref()?);
        let what = format!(
            "it changed {changed} rows ({tag}), more than the {} policy `{}` allows one \
             statement (@max_rows); approved, it may change at most {changed}",
            run.cap.rows, run.cap.policy
        );
        let (id, route, new) =
            self.gate
                .file_over_cap(route, &run.cap, fingerprint, (&what, changed))?;
        if let Some(mut request) = new {
            request.statement_seq = s.seq;
            request.text = s.text.to_string();
            let params = s.params.clone();
            request.params = params
                .into_iter()
                .map(|p| p.map(|v| self.masking.mask_owned(v)))
                .collect();
            *file = Some(request);
        }
        Some((id, route))
    }

    /// A ReadyForQuery ending a capped simple statement: finish it (commit,
    /// or roll back and refuse). `Some(flow)`: the ReadyForQuery is the
    /// gateway's, and the statement stays in flight.
    pub(super) fn capped_ready(&mut self, resume: &mut Option<BytesMut>) -> Option<Flow> {
        let Some(Pending::Statement(s)) = self.pending.front_mut() else {
            return None;
        };
        if s.kind != Flavour::Simple {
            return None;
        }
        let run = s.cap.as_mut()?;
        let mut out = BytesMut::new();
        match (run.stage, run.opened) {
            // The end of the gateway's own COMMIT, ROLLBACK or poison: the
            // statement completes as usual.
            (Stage::Committing | Stage::RollingBack | Stage::Refusing, _) => return None,
            (Stage::Within, true) => {
                run.stage = Stage::Committing;
                query(&mut out, "COMMIT");
            }
            (Stage::Over, true) => {
                run.stage = Stage::Refusing;
                query(&mut out, "ROLLBACK");
                out.extend_from_slice(&crate::gate::poison_query());
                // ROLLBACK's answers come before the poison's.
                self.pending.push_front(Pending::AddedQuery);
            }
            (Stage::Over, false) => {
                run.stage = Stage::Refusing;
                out.extend_from_slice(&crate::gate::poison_query());
            }
            // It failed (no tag) in the gateway's transaction: end that.
            (Stage::Running, true) => {
                run.stage = Stage::RollingBack;
                query(&mut out, "ROLLBACK");
            }
            _ => {
                // Done: the client's messages go on.
                *resume = Some(BytesMut::new());
                return None;
            }
        }
        *resume = Some(out);
        Some(Flow::Replace(BytesMut::new()))
    }

    /// Every statement before a capped one is answered: it may go now.
    pub(super) fn drained(&mut self, resume: &mut Option<BytesMut>) {
        if self.drain_wait && self.pending.is_empty() {
            self.drain_wait = false;
            *resume = Some(BytesMut::new());
        }
    }
}
