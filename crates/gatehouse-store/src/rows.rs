//! Row types and their conversion into domain types.

use gatehouse_core::{
    ActionOutcome, ActionRecord, ApprovalRequest, Decided, DecidedIn, DecisionRecord, Identity,
    SessionEndFields, SessionEndReason, SessionId, SessionStart, SessionSummary, StoreError,
    Timestamp, TokenId, TokenRecord,
};
use serde::{de::DeserializeOwned, Serialize};

pub(crate) fn to_json<T: Serialize + ?Sized>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Malformed(e.to_string()))
}

pub(crate) fn from_json<T: DeserializeOwned>(what: &str, s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Malformed(format!("{what}: {e}")))
}

fn session_id(s: &str) -> Result<SessionId, StoreError> {
    s.parse()
        .map_err(|e| StoreError::Malformed(format!("session id {s:?}: {e}")))
}

#[derive(sqlx::FromRow)]
pub(crate) struct TokenRow {
    id: String,
    identity: String,
    groups_json: String,
    secret_hash: String,
    created_at: i64,
    expires_at: i64,
    revoked_at: Option<i64>,
    ssh_key: Option<String>,
}

impl TryFrom<TokenRow> for TokenRecord {
    type Error = StoreError;
    fn try_from(r: TokenRow) -> Result<Self, StoreError> {
        Ok(TokenRecord {
            id: TokenId(r.id),
            identity: r.identity,
            groups: from_json("token groups", &r.groups_json)?,
            secret_hash: r.secret_hash,
            created_at: Timestamp::from_unix_millis(r.created_at),
            expires_at: Timestamp::from_unix_millis(r.expires_at),
            revoked_at: r.revoked_at.map(Timestamp::from_unix_millis),
            ssh_key: r.ssh_key,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct SessionRow {
    id: String,
    identity: String,
    groups_json: String,
    source_json: String,
    connection: String,
    protocol: String,
    client_addr: String,
    client_user: String,
    application_name: Option<String>,
    started_at: i64,
    ended_at: Option<i64>,
    bytes_from_client: Option<i64>,
    bytes_to_client: Option<i64>,
    end_reason: Option<String>,
    end_detail: Option<String>,
    statement_count: i64,
}

impl TryFrom<SessionRow> for SessionSummary {
    type Error = StoreError;
    fn try_from(r: SessionRow) -> Result<Self, StoreError> {
        let end = match (r.ended_at, r.end_reason) {
            (Some(at), Some(reason)) => Some(SessionEndFields {
                ended_at: Timestamp::from_unix_millis(at),
                bytes_from_client: r.bytes_from_client.unwrap_or(0) as u64,
                bytes_to_client: r.bytes_to_client.unwrap_or(0) as u64,
                reason: SessionEndReason::parse(&reason).ok_or_else(|| {
                    StoreError::Malformed(format!("session end reason {reason:?}"))
                })?,
                detail: r.end_detail,
            }),
            _ => None,
        };
        Ok(SessionSummary {
            start: SessionStart {
                id: session_id(&r.id)?,
                identity: Identity {
                    subject: r.identity,
                    groups: from_json("session groups", &r.groups_json)?,
                    source: from_json("session identity source", &r.source_json)?,
                },
                connection: r.connection,
                protocol: r.protocol,
                client_addr: r.client_addr,
                client_user: r.client_user,
                application_name: r.application_name,
                started_at: Timestamp::from_unix_millis(r.started_at),
            },
            end,
            statement_count: r.statement_count as u64,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct StatementRow {
    session_id: String,
    seq: i64,
    protocol: String,
    text: String,
    params_json: String,
    started_at: i64,
    duration_us: i64,
    status: String,
    command_tag: Option<String>,
    rows_affected: Option<i64>,
    sqlstate: Option<String>,
    error_message: Option<String>,
    decision: Option<String>,
    decision_policies_json: Option<String>,
    policy_mode: Option<String>,
    decision_reason: Option<String>,
    masking_json: Option<String>,
    exchange_json: Option<String>,
    text_sha256: Option<String>,
    shared_text: Option<String>,
}

impl TryFrom<StatementRow> for ActionRecord {
    type Error = StoreError;
    fn try_from(r: StatementRow) -> Result<Self, StoreError> {
        let outcome = match r.status.as_str() {
            "ok" => ActionOutcome::Ok {
                summary: r.command_tag.unwrap_or_default(),
                count: r.rows_affected.map(|n| n as u64),
            },
            "error" => ActionOutcome::Error {
                code: r.sqlstate.unwrap_or_default(),
                message: r.error_message.unwrap_or_default(),
            },
            "incomplete" => ActionOutcome::Incomplete,
            other => {
                return Err(StoreError::Malformed(format!("statement status {other:?}")));
            }
        };
        Ok(ActionRecord {
            session_id: session_id(&r.session_id)?,
            seq: r.seq as u64,
            protocol: r.protocol,
            text: super::texts::restore(
                || format!("statement {}/{}", r.session_id, r.seq),
                r.text,
                r.text_sha256,
                r.shared_text,
            )?,
            params: from_json("statement params", &r.params_json)?,
            started_at: Timestamp::from_unix_millis(r.started_at),
            duration_us: r.duration_us as u64,
            outcome,
            decision: match r.decision {
                Some(decision) => Some(DecisionRecord {
                    decision: Decided::parse(&decision).ok_or_else(|| {
                        StoreError::Malformed(format!("statement decision {decision:?}"))
                    })?,
                    policies: match r.decision_policies_json {
                        Some(j) => from_json("decision policies", &j)?,
                        None => Vec::new(),
                    },
                    mode: {
                        let mode = r.policy_mode.unwrap_or_default();
                        DecidedIn::parse(&mode).ok_or_else(|| {
                            StoreError::Malformed(format!("statement policy mode {mode:?}"))
                        })?
                    },
                    reason: r.decision_reason,
                }),
                None => None,
            },
            masking: r
                .masking_json
                .map(|j| from_json("statement masking", &j))
                .transpose()?,
            exchange: r
                .exchange_json
                .map(|j| from_json("statement exchange", &j))
                .transpose()?,
        })
    }
}

/// An approval request's row: its JSON body, and its long text if stored by
/// content.
#[derive(sqlx::FromRow)]
pub(crate) struct ApprovalRow {
    id: String,
    body_json: String,
    text_sha256: Option<String>,
    shared_text: Option<String>,
}

impl TryFrom<ApprovalRow> for ApprovalRequest {
    type Error = StoreError;
    fn try_from(r: ApprovalRow) -> Result<Self, StoreError> {
        let mut request: ApprovalRequest = from_json("approval", &r.body_json)?;
        request.text = super::texts::restore(
            || format!("approval {}", r.id),
            request.text,
            r.text_sha256,
            r.shared_text,
        )?;
        Ok(request)
    }
}
