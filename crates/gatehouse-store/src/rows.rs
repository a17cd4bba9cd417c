//! Row types and their conversion into domain types.

use gatehouse_core::{
    ActionOutcome, ActionRecord, ApprovalRequest, Decided, DecidedIn, DecisionRecord, Identity,
    NodeRecord, SessionEndFields, SessionEndReason, SessionId, SessionStart, SessionSummary,
    StoreError, Timestamp, TokenId, TokenRecord,
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

/// A statement record's columns as both stores keep them, in the order of
/// [`STATEMENT_COLUMNS`]: one conversion, so the stores cannot drift apart.
pub(crate) struct StatementValues {
    session_id: String,
    seq: i64,
    protocol: String,
    /// Empty when the text is stored by content (`text_sha256`).
    text: String,
    params_json: String,
    started_at: i64,
    duration_us: i64,
    status: &'static str,
    command_tag: Option<String>,
    rows_affected: Option<i64>,
    sqlstate: Option<String>,
    error_message: Option<String>,
    decision: Option<&'static str>,
    decision_policies_json: Option<String>,
    policy_mode: Option<&'static str>,
    decision_reason: Option<String>,
    masking_json: Option<String>,
    exchange_json: Option<String>,
    text_sha256: Option<String>,
}

/// The `statements` columns [`push_statement`] binds, in its order.
pub(crate) const STATEMENT_COLUMNS: &str = "session_id, seq, protocol, text, params_json, \
     started_at, duration_us, status, command_tag, rows_affected, sqlstate, error_message, \
     decision, decision_policies_json, policy_mode, decision_reason, masking_json, \
     exchange_json, text_sha256";

impl StatementValues {
    pub(crate) fn new(st: &ActionRecord) -> Result<Self, StoreError> {
        let (status, command_tag, rows_affected, sqlstate, error_message) = match &st.outcome {
            ActionOutcome::Ok { summary, count } => (
                "ok",
                Some(summary.clone()),
                count.map(|r| r as i64),
                None,
                None,
            ),
            ActionOutcome::Error { code, message } => (
                "error",
                None,
                None,
                Some(code.clone()),
                Some(message.clone()),
            ),
            ActionOutcome::Incomplete => ("incomplete", None, None, None, None),
        };
        let text_sha256 = super::texts::key(&st.text);
        Ok(Self {
            session_id: st.session_id.to_string(),
            seq: st.seq as i64,
            protocol: st.protocol.clone(),
            text: match text_sha256 {
                Some(_) => String::new(),
                None => st.text.clone(),
            },
            params_json: to_json(&st.params)?,
            started_at: st.started_at.unix_millis(),
            duration_us: st.duration_us as i64,
            status,
            command_tag,
            rows_affected,
            sqlstate,
            error_message,
            decision: st.decision.as_ref().map(|d| d.decision.as_str()),
            decision_policies_json: st
                .decision
                .as_ref()
                .map(|d| to_json(&d.policies))
                .transpose()?,
            policy_mode: st.decision.as_ref().map(|d| d.mode.as_str()),
            decision_reason: st.decision.as_ref().and_then(|d| d.reason.clone()),
            masking_json: st.masking.as_ref().map(to_json).transpose()?,
            exchange_json: st.exchange.as_ref().map(to_json).transpose()?,
            text_sha256,
        })
    }

    /// The content key of its text, when the text is stored by content.
    pub(crate) fn text_key(&self) -> Option<&str> {
        self.text_sha256.as_deref()
    }

    /// The same values with every free text passed through `clean` (a
    /// store that cannot hold some characters replaces them).
    pub(crate) fn map_texts(mut self, clean: impl Fn(String) -> String) -> Self {
        let opt = |v: Option<String>| v.map(&clean);
        self.protocol = clean(self.protocol);
        self.text = clean(self.text);
        self.command_tag = opt(self.command_tag);
        self.sqlstate = opt(self.sqlstate);
        self.error_message = opt(self.error_message);
        self.decision_reason = opt(self.decision_reason);
        self
    }
}

/// Binds one statement's values as a row of a multi-row INSERT into
/// [`STATEMENT_COLUMNS`], for either store.
pub(crate) fn push_statement<'args, DB>(
    mut b: sqlx::query_builder::Separated<'_, 'args, DB, &'static str>,
    v: StatementValues,
) where
    DB: sqlx::Database,
    String: sqlx::Encode<'args, DB> + sqlx::Type<DB>,
    Option<String>: sqlx::Encode<'args, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'args, DB> + sqlx::Type<DB>,
    Option<i64>: sqlx::Encode<'args, DB> + sqlx::Type<DB>,
    &'static str: sqlx::Encode<'args, DB> + sqlx::Type<DB>,
    Option<&'static str>: sqlx::Encode<'args, DB> + sqlx::Type<DB>,
{
    b.push_bind(v.session_id)
        .push_bind(v.seq)
        .push_bind(v.protocol)
        .push_bind(v.text)
        .push_bind(v.params_json)
        .push_bind(v.started_at)
        .push_bind(v.duration_us)
        .push_bind(v.status)
        .push_bind(v.command_tag)
        .push_bind(v.rows_affected)
        .push_bind(v.sqlstate)
        .push_bind(v.error_message)
        .push_bind(v.decision)
        .push_bind(v.decision_policies_json)
        .push_bind(v.policy_mode)
        .push_bind(v.decision_reason)
        .push_bind(v.masking_json)
        .push_bind(v.exchange_json)
        .push_bind(v.text_sha256);
}

/// An approval's JSON body as stored, and the content key of its text when
/// the text is stored by content (then the body's text is empty): a long
/// text is kept once, however often its votes rewrite the body.
pub(crate) fn approval_body(r: &ApprovalRequest) -> Result<(String, Option<String>), StoreError> {
    let key = super::texts::key(&r.text);
    let body = match key {
        Some(_) => to_json(&ApprovalRequest {
            text: String::new(),
            ..r.clone()
        })?,
        None => to_json(r)?,
    };
    Ok((body, key))
}

/// Selects approvals (as [`ApprovalRow`]s, alias `a`) with their long text
/// joined back (see `texts`); callers add the WHERE clause.
pub(crate) const APPROVAL_COLUMNS: &str =
    "SELECT a.id, a.body_json, a.text_sha256, t.text AS shared_text \
     FROM approvals a LEFT JOIN statement_texts t ON t.sha256 = a.text_sha256";

/// [`APPROVAL_COLUMNS`] with when each request last changed.
pub(crate) const CHANGED_APPROVAL_COLUMNS: &str =
    "SELECT a.changed_at, a.id, a.body_json, a.text_sha256, t.text AS shared_text \
     FROM approvals a LEFT JOIN statement_texts t ON t.sha256 = a.text_sha256";

/// An approval request's row with when it last changed.
#[derive(sqlx::FromRow)]
pub(crate) struct ChangedApprovalRow {
    changed_at: i64,
    #[sqlx(flatten)]
    row: ApprovalRow,
}

/// The changed requests that can be read, each with its time; a row that
/// cannot is logged and left out (one bad row must not stop a node
/// following every other change).
pub(crate) fn changed_requests(
    now: Timestamp,
    rows: Vec<ChangedApprovalRow>,
    limit: u32,
) -> gatehouse_core::ApprovalChanges {
    let more_from = if rows.len() >= limit as usize {
        rows.last()
            .map(|r| Timestamp::from_unix_millis(r.changed_at))
    } else {
        None
    };
    let changed = rows
        .into_iter()
        .filter_map(|r| {
            let id = r.row.id.clone();
            match ApprovalRequest::try_from(r.row) {
                Ok(request) => Some((Timestamp::from_unix_millis(r.changed_at), request)),
                Err(e) => {
                    tracing::error!(request = %id, error = %e, "an approval request in the store cannot be read; it is left out");
                    None
                }
            }
        })
        .collect();
    gatehouse_core::ApprovalChanges {
        now,
        changed,
        more_from,
    }
}

/// A gateway node's row.
#[derive(sqlx::FromRow)]
pub(crate) struct NodeRow {
    id: String,
    api_address: String,
    version: String,
    started_at: i64,
    heartbeat_at: i64,
    stopped_at: Option<i64>,
    lost_at: Option<i64>,
    lost_by: Option<String>,
}

impl From<NodeRow> for NodeRecord {
    fn from(r: NodeRow) -> Self {
        NodeRecord {
            id: r.id,
            api_address: r.api_address,
            version: r.version,
            started_at: Timestamp::from_unix_millis(r.started_at),
            heartbeat_at: Timestamp::from_unix_millis(r.heartbeat_at),
            stopped_at: r.stopped_at.map(Timestamp::from_unix_millis),
            lost: match (r.lost_at, r.lost_by) {
                (Some(at), Some(by)) => Some((Timestamp::from_unix_millis(at), by)),
                _ => None,
            },
        }
    }
}

/// The `end_detail` of a session ended because its node fell silent.
/// Why a node's session from an earlier run was ended when it restarted.
pub(crate) fn restarted_detail(node: &str, at: Timestamp) -> String {
    format!("node {node} restarted at {at} while the session was open (the earlier run stopped without ending it)")
}

pub(crate) fn node_lost_detail(node: &str, heartbeat_at: Timestamp, by: &str) -> String {
    format!("node {node} stopped heartbeating at {heartbeat_at}; ended by node {by}")
}
