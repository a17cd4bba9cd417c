//! What the gate decides: a statement's verdict, how it was sent, and what
//! the gate keeps of a prepared statement.

use super::Hold;
use crate::refusals::StatementRefusal;
use gatehouse_core::{Decided, DecidedIn, DecisionRecord};
use gatehouse_session::ApprovalStep;
use gatehouse_sql::StatementAnalysis;
use std::sync::Arc;
/// How a statement was sent: the PostgreSQL protocol's flavours, which
/// policies see as `context.protocol`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flavour {
    /// A simple Query.
    Simple,
    /// Parse, Bind and Execute.
    Extended,
    /// The fast-path FunctionCall.
    FunctionCall,
}

impl Flavour {
    /// `simple`, `extended` or `function_call`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Flavour::Simple => "simple",
            Flavour::Extended => "extended",
            Flavour::FunctionCall => "function_call",
        }
    }
}

/// A decided statement.
#[derive(Clone, Debug)]
pub(crate) struct Verdict {
    pub(crate) record: DecisionRecord,
    /// The ErrorResponse to give the client instead of running it.
    pub(crate) refusal: Option<StatementRefusal>,
    /// A statement may change the schema (DDL): cached table names are stale.
    pub(crate) changes_schema: bool,
    /// What the statement does to an approval: files a request, or uses one.
    pub(crate) approval: Option<ApprovalStep>,
    /// The routes a `review` verdict needs approval from.
    pub(crate) review_routes: Vec<String>,
    /// Hold mode: the statement waits for this request before going on.
    pub(crate) hold: Option<Hold>,
    /// The text records keep instead of the client's, which holds a secret
    /// (a password): its literals replaced by placeholders.
    pub(crate) recorded: Option<Arc<str>>,
    /// SQL `PREPARE`s among the statements (by position): their names hold
    /// them once the server answered that statement's CommandComplete.
    pub(crate) sql_prepares: Vec<(usize, Arc<StatementAnalysis>)>,
    /// Statement names the statements drop (`DEALLOCATE`; `None`: all, also
    /// `DISCARD ALL`), forgotten at once when allowed.
    pub(crate) deallocates: Vec<Option<String>>,
    /// The statements change portals (DECLARE, CLOSE, DISCARD): every portal
    /// name is forgotten.
    pub(crate) changes_portals: bool,
    /// The most rows the statement may change (`@max_rows`): it runs so that
    /// it can be undone, and is when it changed more (`tracker/row_cap.rs`).
    pub(crate) row_cap: Option<gatehouse_policy::RowCap>,
    /// Under a row cap whose policy files over-cap writes for approval:
    /// what such an approval is bound to.
    pub(crate) cap_fingerprint: Option<String>,
}

impl Verdict {
    /// A decision, refused when `refusal` is given; no approval step, hold or
    /// schema change yet.
    pub(crate) fn decided(record: DecisionRecord, refusal: Option<StatementRefusal>) -> Self {
        Verdict {
            record,
            refusal,
            changes_schema: false,
            approval: None,
            review_routes: Vec::new(),
            hold: None,
            recorded: None,
            sql_prepares: Vec::new(),
            deallocates: Vec::new(),
            changes_portals: false,
            row_cap: None,
            cap_fingerprint: None,
        }
    }

    /// Lets the statement through, as `policies` decided in policy `mode`.
    pub(crate) fn allowed(policies: Vec<String>, mode: DecidedIn) -> Self {
        Verdict::decided(
            DecisionRecord {
                decision: Decided::Allow,
                policies,
                mode,
                reason: None,
            },
            None,
        )
    }
}

/// What the gate knows of one prepared statement (extended protocol).
#[derive(Clone)]
pub(crate) struct Prepared {
    pub(crate) text: Arc<str>,
    pub(crate) analysis: Option<Arc<StatementAnalysis>>,
    pub(crate) decision: DecisionRecord,
    pub(crate) generation: u64,
    pub(crate) refused: bool,
    /// Needs approval: decided at each Execute, with its parameters.
    pub(crate) needs_approval: bool,
    /// Which Parse made it: Describe answers are matched to it by this.
    pub(crate) parse_id: u64,
    /// Its result columns, once the backend described them.
    pub(crate) columns: Option<Arc<[crate::mask::Column]>>,
    /// Needs approval and not yet approved: the client's Parse (its body),
    /// kept back from the server, which holds a stand-in under the name.
    pub(crate) kept_back: Option<bytes::Bytes>,
    /// The row cap its allowing policy set at Parse.
    pub(crate) row_cap: Option<gatehouse_policy::RowCap>,
}
