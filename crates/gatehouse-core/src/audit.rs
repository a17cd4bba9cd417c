//! Audit events: what the gateway tells its evidence log, and the traits the
//! log is written and stored through.
//!
//! Events carry identities, decisions and counts, never secrets; statement
//! texts and parameters enter only as recorded (masked).

use crate::{
    ActionOutcome, ActionRecord, ApprovalRequest, ApprovalState, ApprovalVote, DecisionRecord,
    Identity, SessionEnd, SessionId, SessionStart, StoreError, Timestamp, TokenRecord,
};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// What happened. One kind per security-relevant event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A caller proved its identity.
    AuthSuccess,
    /// A caller failed to.
    AuthFailure,
    /// A session began.
    SessionStart,
    /// A session ended.
    SessionEnd,
    /// A statement as decided, written before it is forwarded.
    Statement,
    /// How a statement finished: outcome, parameters (masked) and masking summary.
    StatementResult,
    /// An approval was requested.
    ApprovalRequested,
    /// An approval was granted.
    ApprovalApproved,
    /// An approval was denied.
    ApprovalDenied,
    /// An approval expired.
    ApprovalExpired,
    /// A service token was created.
    TokenCreated,
    /// A service token was revoked.
    TokenRevoked,
    /// Policies were loaded or reloaded.
    PolicyLoaded,
    /// The configuration was loaded.
    ConfigLoaded,
    /// The gateway started.
    GatewayStarted,
    /// The gateway stopped.
    GatewayStopped,
    /// An access review was signed off.
    AccessReview,
    /// A masking detector found a sensitive column; column masking now
    /// protects it.
    SensitiveColumnFound,
    /// An operator removed a found sensitive column.
    SensitiveColumnRemoved,
    /// The gateway signed an SSH certificate for a caller.
    SshCertificateIssued,
}

impl EventKind {
    /// The name used in entries.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthSuccess => "auth_success",
            Self::AuthFailure => "auth_failure",
            Self::SessionStart => "session_start",
            Self::SessionEnd => "session_end",
            Self::Statement => "statement",
            Self::StatementResult => "statement_result",
            Self::ApprovalRequested => "approval_requested",
            Self::ApprovalApproved => "approval_approved",
            Self::ApprovalDenied => "approval_denied",
            Self::ApprovalExpired => "approval_expired",
            Self::TokenCreated => "token_created",
            Self::TokenRevoked => "token_revoked",
            Self::PolicyLoaded => "policy_loaded",
            Self::ConfigLoaded => "config_loaded",
            Self::GatewayStarted => "gateway_started",
            Self::GatewayStopped => "gateway_stopped",
            Self::AccessReview => "access_review",
            Self::SensitiveColumnFound => "sensitive_column_found",
            Self::SensitiveColumnRemoved => "sensitive_column_removed",
            Self::SshCertificateIssued => "ssh_certificate_issued",
        }
    }
}

/// One event for the evidence log.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditEvent {
    /// What happened.
    pub kind: EventKind,
    /// When.
    pub time: Timestamp,
    /// The details: a JSON object of strings, integers, booleans, arrays and
    /// objects (no floats: they have no canonical encoding).
    pub payload: Value,
}

/// The evidence log cannot take the event: the action must not go ahead.
#[derive(Clone, Debug, thiserror::Error)]
#[error("evidence log unavailable: {0}")]
pub struct AuditError(pub String);

/// The evidence log as the data path sees it.
#[async_trait]
pub trait AuditTrail: Send + Sync + 'static {
    /// Appends `events` in order; returns once they are durable. An error
    /// means none of them may be relied on: refuse the action.
    async fn append(&self, events: Vec<AuditEvent>) -> Result<(), AuditError>;

    /// Queues events nothing waits for (what happened after an action went
    /// ahead): they are committed with the next append, or shortly after.
    async fn record(&self, events: Vec<AuditEvent>) -> Result<(), AuditError> {
        self.append(events).await
    }

    /// Queues `events` for appending, after everything queued before them,
    /// and returns what tells when they are durable: for an action that
    /// may run while its event is written (one that only reads), whose
    /// answer is held back until then. Waits only for room in the queue.
    async fn enqueue(&self, events: Vec<AuditEvent>) -> Result<PendingAppend, AuditError> {
        Ok(PendingAppend::settled(self.append(events).await))
    }
}

/// Events queued by [`AuditTrail::enqueue`], not yet known to be durable.
#[must_use = "an answer held for these events waits for `durable`"]
#[derive(Debug)]
pub struct PendingAppend(Pending);

#[derive(Debug)]
enum Pending {
    Settled(Result<(), AuditError>),
    Waiting(tokio::sync::oneshot::Receiver<Result<(), AuditError>>),
}

impl PendingAppend {
    /// An append whose outcome is known already.
    pub fn settled(outcome: Result<(), AuditError>) -> Self {
        Self(Pending::Settled(outcome))
    }

    /// An append the writer answers on `ack`; a dropped sender means the
    /// writer stopped before the events were durable.
    pub fn waiting(ack: tokio::sync::oneshot::Receiver<Result<(), AuditError>>) -> Self {
        Self(Pending::Waiting(ack))
    }

    /// Returns once the events are durable; an error means they may not be
    /// relied on, and nothing that waited for them may go on.
    pub async fn durable(self) -> Result<(), AuditError> {
        match self.0 {
            Pending::Settled(outcome) => outcome,
            Pending::Waiting(ack) => ack
                .await
                .map_err(|_| AuditError("the evidence log writer has stopped".into()))?,
        }
    }
}

/// One stored log entry, in storage order.
#[derive(Clone, Debug)]
pub struct LogRow {
    /// Its storage position (row id).
    pub position: i64,
    /// The sequence number it is stored under (what the store indexes; the
    /// entry's own is in its bytes, and a reader checks they agree).
    pub seq: i64,
    /// The entry's bytes as stored.
    pub bytes: Vec<u8>,
}

/// A signed checkpoint as stored, with the writer's state at it (what a
/// restart resumes from: opaque to the store).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// The tree size it covers.
    pub size: u64,
    /// The signed note.
    pub note: String,
    /// The writer's state at that size.
    pub state: Vec<u8>,
}

/// Where the evidence log keeps its entries and signed checkpoints.
#[async_trait]
pub trait EvidenceStore: Send + Sync + 'static {
    /// Appends entries (sequence number, canonical bytes) and, if given, a
    /// signed checkpoint with the writer's state at it, all in one durable
    /// transaction. Synchronous: the log's writer runs on a thread of its
    /// own so that a commit is one hop from the session and back. Never
    /// call it on the async runtime's workers.
    fn append_blocking(
        &self,
        entries: &[(u64, Vec<u8>)],
        checkpoint: Option<StoredCheckpoint>,
    ) -> Result<(), StoreError>;
    /// Up to `limit` entries stored after storage position `after` (from
    /// the first when `None`), in storage order: how verification and
    /// exports read the whole log a page at a time.
    async fn entries_after(
        &self,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Vec<LogRow>, StoreError>;
    /// Up to `limit` entries numbered `first` and after, by number (then
    /// storage order): what a live sink delivers next, and the unsigned tail
    /// a restart checks. Through an index: its cost does not grow with the log.
    async fn entries_from(&self, first: u64, limit: usize) -> Result<Vec<LogRow>, StoreError>;
    /// The newest checkpoint stored with the writer's state (`None`: none,
    /// or only ones written before the state was kept).
    async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError>;
    /// Every stored checkpoint note, oldest first.
    async fn checkpoints(&self) -> Result<Vec<String>, StoreError>;
    /// The highest stored sequence number.
    async fn last_seq(&self) -> Result<Option<u64>, StoreError>;
    /// The highest storage position (the last row written).
    async fn last_position(&self) -> Result<Option<i64>, StoreError>;
}

/// How much of a statement's text an approval event repeats: the text
/// itself is in the log once, in the statement's own event (which the
/// approval events name by `session` and `statement_seq`); the request's
/// `fingerprint` binds the whole of it.
pub const APPROVAL_TEXT_EXCERPT: usize = 256;

/// `text`, cut to [`APPROVAL_TEXT_EXCERPT`] bytes (at a character
/// boundary) with `…` when longer.
fn text_excerpt(text: &str) -> String {
    if text.len() <= APPROVAL_TEXT_EXCERPT {
        return text.to_string();
    }
    let mut end = APPROVAL_TEXT_EXCERPT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

fn event(kind: EventKind, payload: Value) -> AuditEvent {
    AuditEvent {
        kind,
        time: Timestamp::now(),
        payload,
    }
}

/// What names a found sensitive column in its events.
fn column_json(c: &crate::SensitiveColumn) -> Value {
    json!({
        "column_id": c.id,
        "connection": c.connection,
        "schema": c.schema,
        "table": c.table,
        "column": c.column,
        "detector": c.detector,
    })
}

fn identity_json(identity: &Identity) -> Value {
    json!({
        "subject": identity.subject,
        "groups": identity.groups,
        "source": identity.source,
    })
}

fn decision_json(d: &DecisionRecord) -> Value {
    let mut m = Map::new();
    m.insert("decision".into(), d.decision.as_str().into());
    m.insert("policies".into(), d.policies.clone().into());
    m.insert("mode".into(), d.mode.as_str().into());
    if let Some(r) = &d.reason {
        m.insert("reason".into(), r.clone().into());
    }
    Value::Object(m)
}

/// Where a caller came from and what it asked for, for authentication events.
#[derive(Clone, Debug)]
pub struct AuthAttempt<'a> {
    /// `postgres`, later `http`, `ssh`…
    pub protocol: &'a str,
    /// The caller's address.
    pub client_addr: &'a str,
    /// The connection name asked for, when known.
    pub connection: Option<&'a str>,
}

impl AuditEvent {
    /// A caller proved its identity.
    pub fn auth_success(at: &AuthAttempt<'_>, identity: &Identity) -> Self {
        event(
            EventKind::AuthSuccess,
            json!({
                "protocol": at.protocol,
                "client_addr": at.client_addr,
                "connection": at.connection,
                "identity": identity_json(identity),
            }),
        )
    }

    /// A caller proved its identity and asked for these session settings at
    /// login (PostgreSQL's startup parameters the gateway passes on, each
    /// allowed like the `SET` it amounts to).
    pub fn auth_success_with_settings(
        at: &AuthAttempt<'_>,
        identity: &Identity,
        settings: &[(String, String)],
    ) -> Self {
        let mut e = Self::auth_success(at, identity);
        if let Value::Object(m) = &mut e.payload {
            let settings: serde_json::Map<String, Value> = settings
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            m.insert("settings".into(), Value::Object(settings));
        }
        e
    }

    /// A caller was refused at login: `stage` is `transport`, `credential` or
    /// `policy`; `reason` is what the caller was told (never a secret).
    pub fn auth_failure(
        at: &AuthAttempt<'_>,
        subject: Option<&str>,
        stage: &str,
        reason: &str,
    ) -> Self {
        event(
            EventKind::AuthFailure,
            json!({
                "protocol": at.protocol,
                "client_addr": at.client_addr,
                "connection": at.connection,
                "subject": subject,
                "stage": stage,
                "reason": reason,
            }),
        )
    }

    /// A session began.
    pub fn session_start(s: &SessionStart) -> Self {
        event(
            EventKind::SessionStart,
            json!({
                "session": s.id,
                "identity": identity_json(&s.identity),
                "connection": s.connection,
                "protocol": s.protocol,
                "client_addr": s.client_addr,
                "client_user": s.client_user,
                "application_name": s.application_name,
                "started_at": s.started_at,
            }),
        )
    }

    /// A session ended.
    pub fn session_end(e: &SessionEnd) -> Self {
        event(
            EventKind::SessionEnd,
            json!({
                "session": e.id,
                "ended_at": e.ended_at,
                "bytes_from_client": e.bytes_from_client,
                "bytes_to_client": e.bytes_to_client,
                "reason": e.reason.as_str(),
                "detail": e.detail,
            }),
        )
    }

    /// An action (statement, request, message) as decided, before it is
    /// forwarded (or refused). The event keeps its historical name.
    pub fn statement(s: &ActionDecided<'_>) -> Self {
        event(
            EventKind::Statement,
            json!({
                "session": s.session,
                "seq": s.seq,
                "identity": s.identity,
                "connection": s.connection,
                "protocol": s.protocol,
                "text": s.text,
                "parameters": s.parameters,
                "decision": decision_json(s.decision),
            }),
        )
    }

    /// How an action finished, as recorded (masked).
    pub fn statement_result(r: &ActionRecord) -> Self {
        let mut m = Map::new();
        m.insert("session".into(), json!(r.session_id));
        m.insert("seq".into(), r.seq.into());
        match &r.outcome {
            ActionOutcome::Ok {
                summary: command_tag,
                count: rows,
            } => {
                m.insert("status".into(), "ok".into());
                m.insert("command_tag".into(), command_tag.clone().into());
                m.insert("rows".into(), json!(rows));
            }
            ActionOutcome::Error {
                code: sqlstate,
                message,
            } => {
                m.insert("status".into(), "error".into());
                m.insert("sqlstate".into(), sqlstate.clone().into());
                m.insert("message".into(), message.clone().into());
            }
            ActionOutcome::Incomplete => {
                m.insert("status".into(), "incomplete".into());
            }
        }
        m.insert("duration_us".into(), r.duration_us.into());
        // Requests of other protocols say which; SQL statements' results
        // stay as they always were.
        if r.protocol != crate::Protocol::Postgres.as_str() {
            m.insert("protocol".into(), r.protocol.clone().into());
        }
        if !r.params.is_empty() {
            m.insert("params".into(), json!(r.params));
        }
        if let Some(d) = &r.decision {
            m.insert("decision".into(), d.decision.as_str().into());
        }
        if let Some(masking) = &r.masking {
            m.insert("masking".into(), json!(masking));
        }
        if let Some(stream) = r.exchange.as_ref().and_then(|x| x.stream.as_ref()) {
            m.insert("stream".into(), json!(stream));
        }
        event(EventKind::StatementResult, Value::Object(m))
    }

    /// A service token was created (its public id, never its secret).
    pub fn token_created(t: &TokenRecord) -> Self {
        let mut payload = json!({
            "token_id": t.id,
            "identity": t.identity,
            "groups": t.groups,
            "expires_at": t.expires_at,
        });
        if let (Some(key), Value::Object(m)) = (&t.ssh_key, &mut payload) {
            m.insert("ssh_key".into(), key.clone().into());
        }
        event(EventKind::TokenCreated, payload)
    }

    /// The gateway signed a short-lived SSH certificate for `identity`.
    pub fn ssh_certificate_issued(
        identity: &Identity,
        serial: u64,
        key_fingerprint: &str,
        valid_before: Timestamp,
    ) -> Self {
        event(
            EventKind::SshCertificateIssued,
            json!({
                "identity": identity,
                "serial": serial.to_string(),
                "key_fingerprint": key_fingerprint,
                "valid_before": valid_before,
            }),
        )
    }

    /// An access review was signed off: who reviewed, their notes, and the
    /// review they saw (with its SHA-256, which the reviewer was shown).
    pub fn access_review(reviewer: &str, notes: &str, digest: &str, review: Value) -> Self {
        event(
            EventKind::AccessReview,
            json!({
                "reviewer": reviewer,
                "notes": notes,
                "digest": digest,
                "review": review,
            }),
        )
    }

    /// A statement needs approval: the request, exactly as approvers see it.
    pub fn approval_requested(r: &ApprovalRequest) -> Self {
        event(
            EventKind::ApprovalRequested,
            json!({
                "request": r.id,
                "route": r.route,
                "identity": r.requester.subject,
                "groups": r.requester.groups,
                "connection": r.connection,
                "session": r.session,
                "statement_seq": r.statement_seq,
                "text": text_excerpt(&r.text),
                "text_bytes": r.text.len(),
                "params": r.params,
                "fingerprint": r.fingerprint,
                "policies": r.policies,
                "analysis": r.analysis,
                "reason": r.reason,
                "expires_at": r.expires_at,
            }),
        )
    }

    /// An approver decided: `approval_approved` (whether or not more
    /// approvals are needed; `state` says) or `approval_denied`.
    pub fn approval_decided(r: &ApprovalRequest, vote: &ApprovalVote) -> Self {
        event(
            if vote.approve {
                EventKind::ApprovalApproved
            } else {
                EventKind::ApprovalDenied
            },
            json!({
                "request": r.id,
                "route": r.route,
                "identity": r.requester.subject,
                "approver": vote.approver,
                "comment": vote.comment,
                "session": r.session,
                "statement_seq": r.statement_seq,
                "text": text_excerpt(&r.text),
                "text_bytes": r.text.len(),
                "fingerprint": r.fingerprint,
                "state": r.state.as_str(),
                "valid_until": r.valid_until,
            }),
        )
    }

    /// A request lapsed; `was` is its state before: pending (nobody decided
    /// in time) or approved (not used in time).
    pub fn approval_expired(r: &ApprovalRequest, was: ApprovalState) -> Self {
        event(
            EventKind::ApprovalExpired,
            json!({
                "request": r.id,
                "route": r.route,
                "identity": r.requester.subject,
                "session": r.session,
                "statement_seq": r.statement_seq,
                "text": text_excerpt(&r.text),
                "text_bytes": r.text.len(),
                "reason": if was == ApprovalState::Approved {
                    "approved but not used in time"
                } else {
                    "no decision in time"
                },
                "was": was.as_str(),
            }),
        )
    }

    /// A service token was revoked.
    pub fn token_revoked(t: &TokenRecord) -> Self {
        event(
            EventKind::TokenRevoked,
            json!({
                "token_id": t.id,
                "identity": t.identity,
                "revoked_at": t.revoked_at,
            }),
        )
    }

    /// A masking detector found a sensitive column.
    pub fn sensitive_column_found(c: &crate::SensitiveColumn) -> Self {
        let mut payload = column_json(c);
        payload["found_by"] = json!(c.found_by.as_str());
        if let Some(who) = &c.found_for {
            payload["identity"] = json!(who);
        }
        if let Some(s) = c.session {
            payload["session_id"] = json!(s.to_string());
        }
        if let Some((hits, sampled)) = c.sampled {
            payload["hits"] = json!(hits);
            payload["sampled"] = json!(sampled);
        }
        event(EventKind::SensitiveColumnFound, payload)
    }

    /// An operator (`by`) removed a found sensitive column.
    pub fn sensitive_column_removed(c: &crate::SensitiveColumn, by: &str) -> Self {
        let mut payload = column_json(c);
        payload["removed_by"] = json!(by);
        event(EventKind::SensitiveColumnRemoved, payload)
    }

    /// Policies were loaded (`trigger`: `start` or `reload`), with each
    /// file's SHA-256.
    pub fn policy_loaded(trigger: &str, mode: &str, files: &[(String, String)]) -> Self {
        let files: Vec<Value> = files
            .iter()
            .map(|(path, sha)| json!({"path": path, "sha256": sha}))
            .collect();
        event(
            EventKind::PolicyLoaded,
            json!({"trigger": trigger, "mode": mode, "files": files}),
        )
    }

    /// The configuration was loaded.
    pub fn config_loaded(path: &str, sha256: &str) -> Self {
        event(
            EventKind::ConfigLoaded,
            json!({"path": path, "sha256": sha256}),
        )
    }

    /// The gateway started.
    pub fn gateway_started(version: &str, listeners: &[String]) -> Self {
        event(
            EventKind::GatewayStarted,
            json!({"version": version, "listeners": listeners}),
        )
    }

    /// The gateway is stopping.
    pub fn gateway_stopped(reason: &str) -> Self {
        event(EventKind::GatewayStopped, json!({"reason": reason}))
    }
}

/// An action's decision, for [`AuditEvent::statement`].
#[derive(Clone, Copy, Debug)]
pub struct ActionDecided<'a> {
    /// Its session.
    pub session: SessionId,
    /// Its place in the session.
    pub seq: u64,
    /// Who sent it.
    pub identity: &'a str,
    /// To which connection.
    pub connection: &'a str,
    /// `simple`, `extended`, `function_call`.
    pub protocol: &'a str,
    /// The text as recorded (masked).
    pub text: &'a str,
    /// How many bind parameters came with it.
    pub parameters: usize,
    /// The decision.
    pub decision: &'a DecisionRecord,
}
