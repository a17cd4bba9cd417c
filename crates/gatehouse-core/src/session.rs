use crate::{Identity, Timestamp};
use serde::{Deserialize, Serialize};

/// A session's id: a UUIDv7, so ids sort by start time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionId(pub uuid::Uuid);

impl SessionId {
    /// A new, time-ordered id.
    pub fn new() -> Self {
        Self(uuid::Uuid::now_v7())
    }
}

impl Default for SessionId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for SessionId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        uuid::Uuid::parse_str(s).map(Self)
    }
}

/// What is known when a session opens: who, to what, from where.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionStart {
    /// The session's id.
    pub id: SessionId,
    /// The authenticated caller.
    pub identity: Identity,
    /// The connection name the caller chose (PostgreSQL: `dbname`).
    pub connection: String,
    /// The protocol, e.g. `postgres`.
    pub protocol: String,
    /// The caller's address (`ip:port`).
    pub client_addr: String,
    /// The user name the client sent (informational; the token decides).
    pub client_user: String,
    /// The client's `application_name`, if it sent one.
    pub application_name: Option<String>,
    /// When the session started.
    pub started_at: Timestamp,
}

/// How a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionEndReason {
    /// The client sent Terminate.
    ClientTerminated,
    /// The client closed the connection without Terminate.
    ClientDisconnected,
    /// The backend closed the connection.
    BackendClosed,
    /// The client sent input the gateway could not accept.
    ProtocolError,
    /// An I/O error on either leg.
    NetworkError,
    /// The gateway shut down.
    GatewayShutdown,
    /// The evidence log could not be written; the pending action was refused.
    EvidenceLogFailed,
    /// Something the gateway did not decide (code inside a function) changed
    /// a setting that decides how the resource reads what follows, so the
    /// gateway could no longer read the session's actions as the resource does.
    PinnedSettingChanged,
    /// The client exceeded one of the gateway's limits (a message's size).
    LimitExceeded,
    /// The gateway node serving it stopped heartbeating to the shared
    /// store, and another node marked its open sessions ended.
    NodeLost,
}

impl SessionEndReason {
    /// The stable snake_case name used in storage and output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientTerminated => "client_terminated",
            Self::ClientDisconnected => "client_disconnected",
            Self::BackendClosed => "backend_closed",
            Self::ProtocolError => "protocol_error",
            Self::NetworkError => "network_error",
            Self::GatewayShutdown => "gateway_shutdown",
            Self::EvidenceLogFailed => "evidence_log_failed",
            Self::PinnedSettingChanged => "pinned_setting_changed",
            Self::LimitExceeded => "limit_exceeded",
            Self::NodeLost => "node_lost",
        }
    }

    /// Parses the name produced by [`Self::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "client_terminated" => Self::ClientTerminated,
            "client_disconnected" => Self::ClientDisconnected,
            "backend_closed" => Self::BackendClosed,
            "protocol_error" => Self::ProtocolError,
            "network_error" => Self::NetworkError,
            "gateway_shutdown" => Self::GatewayShutdown,
            "evidence_log_failed" => Self::EvidenceLogFailed,
            "pinned_setting_changed" => Self::PinnedSettingChanged,
            "limit_exceeded" => Self::LimitExceeded,
            "node_lost" => Self::NodeLost,
            _ => return None,
        })
    }
}

/// What is known when a session closes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionEnd {
    /// The session's id.
    pub id: SessionId,
    /// When it ended.
    pub ended_at: Timestamp,
    /// Bytes received from the client.
    pub bytes_from_client: u64,
    /// Bytes sent to the client.
    pub bytes_to_client: u64,
    /// Why it ended.
    pub reason: SessionEndReason,
    /// Detail for abnormal ends (never secrets).
    pub detail: Option<String>,
}

/// How one action finished, in any protocol. The serialized names are the
/// ones records and events have always carried (`command_tag`, `rows`,
/// `sqlstate`), so stored records, exports and the API read the same.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ActionOutcome {
    /// Completed: what the resource said it did.
    Ok {
        /// SQL: the command tag(s), `SELECT 3` (several joined by `; `);
        /// HTTP: the status line, `200 OK`.
        #[serde(rename = "command_tag")]
        summary: String,
        /// SQL: rows returned or affected, summed over the tags.
        #[serde(rename = "rows")]
        count: Option<u64>,
    },
    /// The resource (or the gateway) answered with an error.
    Error {
        /// SQL: the SQLSTATE; HTTP: the status code; MCP refusals: the
        /// HTTP status the refusal stands for.
        #[serde(rename = "sqlstate")]
        code: String,
        /// The primary message.
        message: String,
    },
    /// The session ended before the action completed.
    Incomplete,
}

/// One action of a session: a SQL statement, an HTTP request, an MCP message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionRecord {
    /// The session it belongs to.
    pub session_id: SessionId,
    /// Position in the session, from 1.
    pub seq: u64,
    /// How it was sent: `simple`, `extended`, `function_call` (PostgreSQL);
    /// `http`; `mcp`.
    pub protocol: String,
    /// The action as sent: a statement's text, `GET /path?query`,
    /// `tools/call name {arguments}` (masked).
    pub text: String,
    /// Bind parameters (extended protocol): text values as-is, binary ones as `\x` hex, NULL as null.
    pub params: Vec<Option<String>>,
    /// When the gateway relayed it.
    pub started_at: Timestamp,
    /// Time from relay to completion, in microseconds.
    pub duration_us: u64,
    /// The result.
    pub outcome: ActionOutcome,
    /// The policy decision that let it through or refused it (`None` where no
    /// decision applies, e.g. a message outside any statement).
    pub decision: Option<DecisionRecord>,
    /// What masking did to its results (`None` when masking is off for the
    /// connection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub masking: Option<MaskingSummary>,
    /// For an HTTP request (or MCP message): what the request and its
    /// response carried besides the request line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange: Option<HttpExchange>,
}

/// What one HTTP request and its response carried, as recorded: headers
/// without credentials and values masked, sizes, and the first bytes of the
/// response body as the caller got it (masked for the record).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpExchange {
    /// The request's headers as forwarded, without credentials.
    pub request_headers: Vec<(String, String)>,
    /// The request body's size.
    pub request_bytes: u64,
    /// The response status (0 when none came).
    pub status: u16,
    /// The response's headers as sent to the caller, without cookies.
    pub response_headers: Vec<(String, String)>,
    /// Bytes of response body sent to the caller.
    pub response_bytes: u64,
    /// The first bytes of the response body (masked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_body: Option<String>,
    /// An upgraded stream (Kubernetes exec, attach, port-forward): what it
    /// carried and where its recording is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<StreamRecord>,
}

/// What an upgraded stream carried: an exec or attach session's recording
/// (asciicast v2, masked) named by its SHA-256, or a port-forward's
/// connections.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamRecord {
    /// The protocol the stream spoke (`v5.channel.k8s.io`, `SPDY/3.1`).
    pub protocol: String,
    /// The recording's file name in the gateway's recordings folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording: Option<String>,
    /// Its SHA-256 (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_sha256: Option<String>,
    /// Its size.
    #[serde(default)]
    pub recording_bytes: u64,
    /// Bytes on stdin, stdout and stderr.
    #[serde(default)]
    pub stdin_bytes: u64,
    /// Bytes the command wrote on stdout.
    #[serde(default)]
    pub stdout_bytes: u64,
    /// Bytes the command wrote on stderr.
    #[serde(default)]
    pub stderr_bytes: u64,
    /// The command's exit code, when the API server reported one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    /// port-forward: connections opened, by port.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forwarded: Vec<(String, u64)>,
}

impl StreamRecord {
    /// Names the recording kept for the stream: its file, SHA-256 and size.
    pub fn kept(&mut self, name: String, sha256: String, bytes: u64) {
        self.recording = Some(name);
        self.recording_sha256 = Some(sha256);
        self.recording_bytes = bytes;
    }
}

/// What masking did to one statement's results: counts, never values.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaskingSummary {
    /// Values (or parts of values) masked in all.
    pub values_masked: u64,
    /// Detectors that fired, with how many values each masked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub detectors: Vec<(String, u64)>,
    /// Column rules that applied, with how many values each masked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<(String, u64)>,
    /// Set when the caller is exempt from masking: the group that exempts it.
    /// Results were sent in clear; the recording is still masked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exempt_group: Option<String>,
}

/// A policy decision as recorded with a statement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// What was decided.
    pub decision: Decided,
    /// The determining policy ids.
    pub policies: Vec<String>,
    /// The policy mode it was decided in.
    pub mode: DecidedIn,
    /// Why it was refused (or would have been).
    pub reason: Option<String>,
}

/// What a decision was, as records keep it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decided {
    /// Let through.
    Allow,
    /// Refused.
    Deny,
    /// Needs approval (refused until approved).
    Review,
    /// Audit mode: would have been refused, was let through.
    ShadowDeny,
    /// Audit mode: would have needed approval, was let through.
    ShadowReview,
    /// Not decided yet (an action prepared before the step that decides it).
    Undecided,
}

impl Decided {
    /// The stable snake_case name used in storage and output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::Review => "review",
            Self::ShadowDeny => "shadow_deny",
            Self::ShadowReview => "shadow_review",
            Self::Undecided => "undecided",
        }
    }

    /// Parses the name produced by [`Self::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "allow" => Self::Allow,
            "deny" => Self::Deny,
            "review" => Self::Review,
            "shadow_deny" => Self::ShadowDeny,
            "shadow_review" => Self::ShadowReview,
            "undecided" => Self::Undecided,
            _ => return None,
        })
    }
}

impl std::fmt::Display for Decided {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The policy mode a decision was made in, as records keep it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecidedIn {
    /// Refusals refuse.
    Enforce,
    /// Refusals are recorded and let through.
    Audit,
    /// No policy decided it (yet).
    #[serde(rename = "")]
    Unset,
}

impl DecidedIn {
    /// `enforce`, `audit`, or empty when no policy decided.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enforce => "enforce",
            Self::Audit => "audit",
            Self::Unset => "",
        }
    }

    /// Parses the name produced by [`Self::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "enforce" => Self::Enforce,
            "audit" => Self::Audit,
            "" => Self::Unset,
            _ => return None,
        })
    }
}

impl std::fmt::Display for DecidedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A session as listed: start, end and counters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionSummary {
    /// How it started.
    #[serde(flatten)]
    pub start: SessionStart,
    /// How it ended; `None` while it is open.
    pub end: Option<SessionEndFields>,
    /// Statements recorded so far.
    pub statement_count: u64,
}

/// Fields of [`SessionEnd`] without the id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionEndFields {
    /// When it ended.
    pub ended_at: Timestamp,
    /// Bytes received from the client.
    pub bytes_from_client: u64,
    /// Bytes sent to the client.
    pub bytes_to_client: u64,
    /// Why it ended.
    pub reason: SessionEndReason,
    /// Detail for abnormal ends.
    pub detail: Option<String>,
}

/// A session with its whole statement timeline: the replay.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionDetail {
    /// The session.
    #[serde(flatten)]
    pub summary: SessionSummary,
    /// Its statements in order.
    pub statements: Vec<ActionRecord>,
}

/// Which sessions to list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionFilter {
    /// Only sessions of this identity subject.
    pub identity: Option<String>,
    /// Only sessions to this connection.
    pub connection: Option<String>,
    /// Only sessions of this protocol (`postgres`, `http`, `mcp`, `ssh`…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// Only sessions that started at or after this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Timestamp>,
    /// Only sessions that started before this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Timestamp>,
    /// Only sessions with an action of this outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<SessionOutcome>,
    /// At most this many, newest first.
    pub limit: Option<u32>,
}

/// What happened in a session, as a filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionOutcome {
    /// An action was refused or held for approval.
    Refused,
    /// Masking changed a value in an answer.
    Masked,
    /// An action ran under an approval.
    Approved,
}

impl SessionOutcome {
    /// The name in queries and storage filters.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Refused => "refused",
            Self::Masked => "masked",
            Self::Approved => "approved",
        }
    }
}
