//! Statements kept back from the server until approved.
//!
//! A Parse of a statement that needs approval does not reach the server.
//! The server gets a stand-in under the same name instead (the empty
//! statement, which runs nothing), so that its answers stay in step with
//! the client's messages, and the gateway keeps the client's Parse. The
//! statement is decided at its Bind, with its parameters:
//! - approved: the stand-in is closed and the kept Parse goes to the server
//!   just before the Bind (the answers to both are the gateway's, and are
//!   not passed on); the portal's first Execute runs on the approval and
//!   records it used;
//! - held (hold mode): the Bind waits for the decision, then is decided
//!   again;
//! - otherwise: the Bind is refused in place (a poison), saying why.
//!
//! A Describe of a kept-back statement is answered by the server from a
//! copy under a name of the gateway's, parsed, described and closed at
//! once: the client's name never holds the statement before approval, and
//! nothing can bind that copy. The gateway's Closes and its copy's Parse
//! are answered to the gateway, never passed on; the client's own Closes
//! are queued too (`Pending::Close`), so the answers stay paired.

use super::names::{Defined, Definition};
use super::pending::{Pending, Portal, ResultSource};
use super::{Flow, Tracker};
use crate::codec::msg::frontend as fe;
use crate::codec::write::{begin, close, finish, message, put_cstr};
use crate::gate::{self, Flavour, Prepared};
use crate::mask::ResultFormats;
use bytes::{BufMut, Bytes, BytesMut};
use gatehouse_core::Decided;
use gatehouse_session::{ApprovalStep, WriteAhead};

/// The name a kept-back statement is described under, closed again in the
/// same breath.
const DESCRIBED_NAME: &str = "gatehouse kept-back statement, described";

/// A Bind of a kept-back statement, as the client sent it.
pub(super) struct KeptBind<'a> {
    pub(super) portal: &'a str,
    pub(super) statement_name: &'a str,
    pub(super) statement: Prepared,
    pub(super) params: Vec<Option<String>>,
    pub(super) fingerprint: Option<String>,
    pub(super) bind_id: u64,
    pub(super) formats: ResultFormats,
    /// The Bind message's body, forwarded as it came when approved.
    pub(super) body: &'a [u8],
}

/// The Parse the server gets in place of one kept back: the same name, the
/// empty statement.
pub(super) fn stand_in_parse(name: &str) -> BytesMut {
    let mut out = BytesMut::with_capacity(16 + name.len());
    let start = begin(&mut out, fe::PARSE);
    put_cstr(&mut out, name);
    put_cstr(&mut out, "");
    out.put_i16(0);
    finish(&mut out, start);
    out
}

impl Tracker {
    /// A Parse that needs approval: kept back, the stand-in goes instead.
    pub(super) fn keep_back(&mut self, name: &str, body: &[u8], mut prepared: Prepared) -> Flow {
        prepared.kept_back = Some(Bytes::copy_from_slice(body));
        self.define(name, Defined::Statement(prepared));
        Flow::Replace(stand_in_parse(name))
    }

    /// A Bind of a kept-back statement: decided now (see the module's doc).
    pub(super) fn bind_kept_back(&mut self, b: KeptBind<'_>, w: &mut WriteAhead) -> Flow {
        let st = &b.statement;
        let kept = st.kept_back.clone();
        let verdict = match self.next_verdict.take() {
            // Only kept-back statements come here; refused, never forwarded, if not.
            _ if kept.is_none() => self.gate.refuse(format!(
                "{}: the gateway holds no statement to bind",
                st.text
            )),
            Some(v) => v,
            None => match (&st.analysis, b.fingerprint.clone()) {
                (Some(a), Some(fingerprint)) => {
                    self.gate
                        .decide_approvable(std::slice::from_ref(a), Flavour::Extended, || {
                            fingerprint
                        })
                        .0
                }
                // Kept back only with an analysis, and Bind fingerprints
                // every such statement: refused rather than guessed at.
                _ => self.gate.refuse(format!(
                    "{}: needs approval, but its parameters could not be bound to one",
                    st.text
                )),
            },
        };
        if verdict.hold.is_some() || verdict.refusal.is_some() {
            // Held: the Bind waits; refused: recorded at the Bind's place.
            return self.gated(
                w,
                Flavour::Extended,
                st.text.clone(),
                b.params,
                verdict,
                gate::poison_bind,
                ResultSource::default(),
                false,
            );
        }
        // Approved (or allowed outright by now). The approval is out of the
        // desk's index already; its first Execute runs on this verdict and
        // records the approval used (the evidence says so with the run).
        let approved = matches!(verdict.approval, Some(ApprovalStep::Use(_)))
            && verdict.record.decision == Decided::Allow;
        let Some(kept) = kept else {
            // Refused above.
            return Flow::Replace(gate::poison_bind());
        };
        let mut statement = b.statement;
        statement.kept_back = None;
        let mut out = BytesMut::with_capacity(kept.len() + b.body.len() + 32);
        if !b.statement_name.is_empty() {
            close(&mut out, b'S', b.statement_name);
            self.pending.push_back(Pending::Added(None));
        }
        message(&mut out, fe::PARSE, &kept);
        self.pending.push_back(Pending::Added(Some(Definition::new(
            b.statement_name,
            Defined::Statement(statement.clone()),
        ))));
        message(&mut out, fe::BIND, b.body);
        let portal = Portal {
            statement,
            params: b.params,
            fingerprint: b.fingerprint,
            bind_id: b.bind_id,
            formats: b.formats,
            columns: None,
            approved: approved.then(|| Box::new(verdict)),
        };
        self.define(b.portal, Defined::Portal(portal));
        Flow::Replace(out)
    }

    /// A Describe of a kept-back statement: a copy under the gateway's own
    /// name, described and closed again.
    pub(super) fn describe_kept_back(&mut self, kept: &[u8], parse_id: u64) -> Flow {
        // The kept Parse's body after its name: the query and parameter types.
        let Some(end) = kept.iter().position(|&c| c == 0) else {
            // Impossible: a Parse is kept only once decoded, name included.
            return Flow::Forward;
        };
        let mut out = BytesMut::with_capacity(kept.len() + 4 * DESCRIBED_NAME.len() + 32);
        // A copy left over (its Close skipped after an error) goes first.
        close(&mut out, b'S', DESCRIBED_NAME);
        self.pending.push_back(Pending::Added(None));
        let start = begin(&mut out, fe::PARSE);
        put_cstr(&mut out, DESCRIBED_NAME);
        out.extend_from_slice(&kept[end + 1..]);
        finish(&mut out, start);
        self.pending.push_back(Pending::Added(None));
        let start = begin(&mut out, fe::DESCRIBE);
        out.put_u8(b'S');
        put_cstr(&mut out, DESCRIBED_NAME);
        finish(&mut out, start);
        if self.masking.active {
            self.pending.push_back(Pending::Describe {
                parse_id,
                bind_id: 0,
            });
        }
        close(&mut out, b'S', DESCRIBED_NAME);
        self.pending.push_back(Pending::Added(None));
        Flow::Replace(out)
    }

    /// The backend's answer to a message the gateway added: not passed on;
    /// a definition it carries holds from now on.
    pub(super) fn added_answered(&mut self) -> Option<Flow> {
        if !matches!(self.pending.front(), Some(Pending::Added(_))) {
            return None;
        }
        if let Some(Pending::Added(Some(d))) = self.pending.pop_front() {
            self.confirm(d);
        }
        Some(Flow::Replace(BytesMut::new()))
    }
}
