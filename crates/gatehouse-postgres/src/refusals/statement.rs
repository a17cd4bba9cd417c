//! Refusals of single statements: each takes the refused statement's place
//! in the stream (an ERROR), and the session goes on.

use crate::codec::backend::{error_response, ErrorNotice};
use crate::hold::HoldOutcome;
use bytes::BytesMut;
use gatehouse_core::{ApprovalId, ApprovalRoute};
use gatehouse_sql::SqlError;

/// A refused statement: the ErrorResponse the client gets in its place,
/// and the SQLSTATE and message its record keeps.
#[derive(Clone, Debug)]
pub(crate) struct StatementRefusal {
    pub(crate) error: BytesMut,
    pub(crate) sqlstate: &'static str,
    pub(crate) message: String,
}

fn statement_error(
    sqlstate: &'static str,
    message: String,
    detail: Option<&str>,
    hint: &str,
) -> StatementRefusal {
    let mut error = BytesMut::new();
    error_response(
        &mut error,
        &ErrorNotice {
            severity: "ERROR",
            code: sqlstate,
            message: &message,
            detail,
            hint: Some(hint),
        },
    );
    StatementRefusal {
        error,
        sqlstate,
        message,
    }
}

/// Who decided: the policies, or the default deny.
fn decided_by(policies: &[String]) -> String {
    if policies.is_empty() {
        "decided by default deny (no policy permits it)".to_string()
    } else {
        format!("decided by policy {}", policies.join(", "))
    }
}

/// The policy refused the statement (or no policy permits it).
pub(crate) fn denied(reason: &str, policies: &[String]) -> StatementRefusal {
    statement_error(
        "42501",
        format!("gatehouse: permission denied: {reason}"),
        Some(&decided_by(policies)),
        "nothing of the statement reached the database; check the policy with `gatehouse policy explain`",
    )
}

/// How a write over its row cap was undone.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Undone {
    /// In the gateway's own transaction, rolled back.
    RolledBack,
    /// In the client's transaction, now aborted.
    TransactionAborted,
    /// In an extended-protocol batch, whose transaction is aborted.
    BatchAborted,
}

/// The statement changed more rows than its policy's `@max_rows`: undone.
pub(crate) fn over_row_cap(
    tag: &str,
    changed: u64,
    cap: &gatehouse_policy::RowCap,
    undone: Undone,
    filed: Option<(ApprovalId, ApprovalRoute)>,
) -> StatementRefusal {
    let undone = match undone {
        Undone::RolledBack => "it was rolled back",
        Undone::TransactionAborted => {
            "it was undone with the transaction, which is aborted now, as after any refused \
             statement"
        }
        Undone::BatchAborted => {
            "it was undone: the transaction it ran in is aborted (an implicit one ends at the \
             batch's Sync), as after any refused statement"
        }
    };
    let what = format!(
        "the statement changed {changed} rows ({tag}), more than the {} one statement may \
         change under policy `{}` (@max_rows); {undone}",
        cap.rows, cap.policy
    );
    match filed {
        Some((id, route)) => statement_error(
            "42501",
            format!("gatehouse: approval required: {what}: request {id}"),
            Some(&format!(
                "decided by policy {}; approvers: members of {}",
                cap.policy,
                route.approver_groups.join(", ")
            )),
            &format!(
                "ask an approver to run `gatehouse approvals approve {id}`; once approved, run \
                 exactly this statement again on this connection (within {}): it runs once, and \
                 may change at most {changed} rows",
                humantime::format_duration(route.valid_for)
            ),
        ),
        None => statement_error(
            "42501",
            format!("gatehouse: permission denied: {what}"),
            Some(&format!("decided by policy {}", cap.policy)),
            "change fewer rows per statement (a narrower WHERE, or in batches); a statement \
             approved through an approval route runs uncapped",
        ),
    }
}

/// The statement needs approval, and none can be filed for it here.
pub(crate) fn approval_unavailable(reason: &str, policies: &[String]) -> StatementRefusal {
    statement_error(
        "42501",
        format!("gatehouse: approval required: {reason}"),
        Some(&decided_by(policies)),
        "this statement may run only once approved, and no approval request can be filed for it \
         here (a fast-path function call, or no approval route): run it as a statement, or ask \
         the gateway's operator",
    )
}

/// Column masking could not follow where a covered column goes.
pub(crate) fn masking_denied(reason: &str, connection: &str, subject: &str) -> StatementRefusal {
    statement_error(
        "42501",
        format!("gatehouse: permission denied: {reason}"),
        Some(&format!(
            "column masking rules of connection {connection} apply to {subject}"
        )),
        "select masked columns as themselves (SELECT ssn FROM customers), which the gateway \
         masks by rule; nothing of the statement reached the database",
    )
}

/// The statement would change (or depend on) a setting the gateway pins.
pub(crate) fn setting_pinned(reason: &str) -> StatementRefusal {
    statement_error(
        "42501",
        format!("gatehouse: permission denied: {reason}"),
        None,
        "nothing of the statement reached the database; the gateway pins the settings it \
         reads statements under (docs/security.md)",
    )
}

/// The statement is longer than `[limits] max_statement_size`.
pub(crate) fn statement_too_long(e: &SqlError) -> StatementRefusal {
    statement_error(
        "54000",
        format!("gatehouse: {e}"),
        None,
        "split the statement (for example a large INSERT into several), or ask the gateway's \
         operator to raise [limits] max_statement_size",
    )
}

/// The statement could not be parsed, so it cannot be decided.
pub(crate) fn unparseable(e: &SqlError) -> StatementRefusal {
    statement_error(
        "42601",
        format!("gatehouse: {e}"),
        None,
        "gatehouse parses every statement with PostgreSQL's own parser and refuses what it cannot parse",
    )
}

/// The statement needs approval, and its requester filed as many requests
/// this minute as it may.
pub(crate) fn too_many_filings(reason: &str) -> StatementRefusal {
    statement_error(
        "53400",
        format!("gatehouse: approval required, and no request filed: {reason}"),
        None,
        "wait a minute, or ask the gateway's operator to raise [limits] approval_requests_per_minute",
    )
}

/// The statement needs approval, and its requester has as many requests
/// pending as it may.
pub(crate) fn too_many_pending(reason: &str) -> StatementRefusal {
    statement_error(
        "53400",
        format!("gatehouse: approval required, and no request filed: {reason}"),
        None,
        "wait for your pending requests to be decided or to expire (`gatehouse approvals list --pending`), \
         or ask the gateway's operator to raise [limits] max_pending_approvals_per_identity",
    )
}

/// The statement waits for approval request `id`: what to do.
pub(crate) fn approval_requested(
    reason: &str,
    id: &ApprovalId,
    route: &ApprovalRoute,
    policies: &[String],
) -> StatementRefusal {
    statement_error(
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

/// A held statement that was not approved (`reason`: why it needed approval).
pub(crate) fn hold_ended(id: &ApprovalId, outcome: HoldOutcome, reason: &str) -> StatementRefusal {
    let (code, message, hint) = match outcome {
        HoldOutcome::Denied => (
            "42501",
            format!("gatehouse: approval denied: request {id}"),
            format!("an approver denied it; `gatehouse approvals show {id}` says who and why"),
        ),
        HoldOutcome::Expired => (
            "57014",
            format!("gatehouse: approval request {id} expired undecided"),
            "run the statement again to file a new request".to_string(),
        ),
        HoldOutcome::Cancelled => (
            "57014",
            format!("gatehouse: canceling statement due to user request: it was waiting for approval request {id}"),
            format!("the request stays pending until it expires; once `gatehouse approvals approve {id}` is done, run exactly this statement again and it runs once"),
        ),
        HoldOutcome::TimedOut | HoldOutcome::Approved => (
            "57014",
            format!("gatehouse: the statement waited for approval and was not decided in time: request {id}"),
            format!("the request stays pending; once `gatehouse approvals approve {id}` is done, run exactly this statement again and it runs once"),
        ),
    };
    statement_error(code, message, Some(reason), &hint)
}

/// The notice a held client gets at once.
pub(crate) fn held_notice(reason: &str, id: &ApprovalId, route: &ApprovalRoute) -> BytesMut {
    let mut out = BytesMut::new();
    crate::codec::backend::notice_response(
        &mut out,
        &ErrorNotice {
            severity: "NOTICE",
            code: "00000",
            message: &format!(
                "gatehouse: {reason}: request {id}; waiting up to {} for a decision",
                humantime::format_duration(route.hold_timeout)
            ),
            detail: Some(&format!(
                "approvers: members of {}",
                route.approver_groups.join(", ")
            )),
            hint: Some(&format!(
                "an approver runs `gatehouse approvals approve {id}`"
            )),
        },
    );
    out
}
