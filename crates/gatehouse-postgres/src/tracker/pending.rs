//! What the tracker keeps between a request and its answer: statements in
//! flight, the queue they wait in, and bound portals.

use super::*;

pub(super) struct InFlight {
    pub(super) kind: Flavour,
    pub(super) seq: u64,
    /// Already masked for recording (see `Tracker::recorded_text`).
    pub(super) text: Arc<str>,
    pub(super) params: Vec<Option<String>>,
    pub(super) started_at: Timestamp,
    pub(super) t0: Instant,
    pub(super) tags: String,
    pub(super) rows: Option<u64>,
    pub(super) error: Option<(String, String)>,
    pub(super) decision: Option<DecisionRecord>,
    /// Refused: the backend's error for the poison is replaced by this.
    pub(super) refusal: Option<StatementRefusal>,
    /// Where its result rows come from, for masking.
    pub(super) result: ResultSource,
    /// How its rows are masked, once known.
    pub(super) plan: Option<ResultPlan>,
    /// How its COPY rows are masked under column rules, once known.
    pub(super) copy_plan: Option<crate::mask::CopyPlan>,
    /// What masking did to its results.
    pub(super) tally: MaskTally,
    /// CommandCompletes received so far (one per statement of a query string).
    pub(super) answered: usize,
    /// SQL `PREPARE`s among its statements, by position: done when answered.
    pub(super) sql_prepares: Vec<(usize, Arc<StatementAnalysis>)>,
    /// Under a row cap: how its run goes (`row_cap.rs`).
    pub(super) cap: Option<Box<super::row_cap::CapRun>>,
}

/// What describes a statement's result rows.
#[derive(Default)]
pub(super) struct ResultSource {
    /// The columns, once described.
    pub(super) columns: Option<Arc<[Column]>>,
    /// The Bind's result formats; `None`: the description's own formats.
    pub(super) formats: Option<ResultFormats>,
    /// The Parse and Bind it came from (0: none), to match Describe answers.
    pub(super) parse_id: u64,
    pub(super) bind_id: u64,
    /// A `COPY … TO` statement: what it sends.
    pub(super) copy_out: Option<Arc<StatementAnalysis>>,
}

/// The analysis when it is a `COPY … TO` (kept for masking its rows by column).
pub(super) fn copy_out(a: Option<&Arc<StatementAnalysis>>) -> Option<Arc<StatementAnalysis>> {
    a.filter(|a| a.copy_out.is_some()).cloned()
}

// The queue lives for the session and is reused; boxing the large variant
// would cost an allocation per statement on the hot path.
#[allow(clippy::large_enum_variant)]
pub(super) enum Pending {
    Statement(InFlight),
    Sync,
    /// A Describe (tracked only when masking): its RowDescription is matched
    /// to the Parse or Bind it asked about.
    Describe {
        parse_id: u64,
        bind_id: u64,
    },
    /// A Parse or Bind: its name holds what it defines once the backend confirms.
    Define(names::Definition),
    /// A message the gateway added (`kept_back.rs`): its answer is not
    /// passed on; a definition it carries holds once confirmed.
    Added(Option<names::Definition>),
    /// A client's Close: its CloseComplete is the client's (kept apart from
    /// the gateway's own Closes).
    Close,
    /// A simple Query of the gateway's own (`row_cap.rs`): every answer up
    /// to its ReadyForQuery is the gateway's.
    AddedQuery,
}

pub(super) struct Portal {
    pub(super) statement: Prepared,
    pub(super) params: Vec<Option<String>>,
    /// For a statement that needs approval: what an approval must cover.
    pub(super) fingerprint: Option<String>,
    pub(super) bind_id: u64,
    pub(super) formats: ResultFormats,
    /// Its columns with their real formats, once a Describe of the portal
    /// was answered.
    pub(super) columns: Option<Arc<[Column]>>,
    /// Approved at its Bind (a statement kept back): the verdict its
    /// Executes run on, the approval already taken.
    pub(super) approved: Option<Box<crate::gate::Verdict>>,
}
