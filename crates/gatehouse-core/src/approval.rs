//! Just-in-time approval: a request to run one exact statement, the route
//! that says who may decide it, and the votes on it.
//!
//! An approval is bound to a statement's fingerprint (who, where, which
//! protocol, the exact text and parameters) and is used at most once.

use crate::{Identity, SessionId, Timestamp};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// An approval request's public id (UUIDv7).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ApprovalId(pub String);

impl ApprovalId {
    /// A new, time-ordered id.
    pub fn new() -> Self {
        Self(uuid::Uuid::now_v7().to_string())
    }
}

impl Default for ApprovalId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for ApprovalId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a route's statements wait for a decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalMode {
    /// The statement waits in its session until decided (or the hold times out).
    Hold,
    /// The statement is refused with the request id; once approved, the
    /// same caller may run exactly the same statement once.
    Request,
}

/// Who may decide a route's requests, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovalRoute {
    /// The name policies give in `@approval("…")`.
    pub name: String,
    /// Members of any of these groups may approve or deny.
    pub approver_groups: Vec<String>,
    /// Approvals needed (by distinct approvers).
    pub approvals_needed: u32,
    /// Whether the requester may approve their own request.
    pub allow_self_approval: bool,
    /// Hold or request.
    pub mode: ApprovalMode,
    /// How long a request waits for a decision.
    pub request_ttl: Duration,
    /// Hold mode: how long the client waits.
    pub hold_timeout: Duration,
    /// How long an approval may be used (hold mode: by a run after the hold gave up).
    pub valid_for: Duration,
}

/// Where a request stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalState {
    /// Waiting for decisions.
    Pending,
    /// Approved; may be used once (until `valid_until`).
    Approved,
    /// Denied by an approver.
    Denied,
    /// Nobody decided in time, or the approval was not used in time.
    Expired,
    /// The approved statement ran.
    Used,
}

impl ApprovalState {
    /// The name used in records and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Expired => "expired",
            Self::Used => "used",
        }
    }
}

/// One approver's decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalVote {
    /// The approver's subject.
    pub approver: String,
    /// Approve (true) or deny.
    pub approve: bool,
    /// Why.
    pub comment: String,
    /// When.
    pub at: Timestamp,
}

/// A request to run one exact statement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRequest {
    /// Public id.
    pub id: ApprovalId,
    /// The route that decides it.
    pub route: String,
    /// Who asked.
    pub requester: Identity,
    /// The connection the statement is for.
    pub connection: String,
    /// The session it was asked from.
    pub session: SessionId,
    /// The statement's number in that session.
    pub statement_seq: u64,
    /// The statement as recorded (masked like every recorded text).
    pub text: String,
    /// Its bind parameters as recorded.
    pub params: Vec<Option<String>>,
    /// What the approval is bound to: see [`statement_fingerprint`].
    pub fingerprint: String,
    /// The `@approval` policies that required it.
    pub policies: Vec<String>,
    /// What the analysis found that needs approval, e.g.
    /// `ci-deploy (delete on public.customers) requires approval`.
    #[serde(default)]
    pub analysis: String,
    /// The caller's reason (`SET gatehouse.reason = '…'`), if given.
    pub reason: Option<String>,
    /// When it was asked.
    pub created_at: Timestamp,
    /// When it expires undecided.
    pub expires_at: Timestamp,
    /// Where it stands.
    pub state: ApprovalState,
    /// Decisions so far.
    pub votes: Vec<ApprovalVote>,
    /// Once approved: the approval may be used until then.
    pub valid_until: Option<Timestamp>,
    /// When the approved statement ran.
    pub used_at: Option<Timestamp>,
    /// A write over its row cap: the rows it changed when it was undone;
    /// approved, it may change at most that many.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rows: Option<u64>,
}

/// Why a vote was not taken.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VoteRefused {
    /// The request is no longer pending.
    #[error("request {0} is {1}: it can no longer be decided")]
    NotPending(ApprovalId, &'static str),
    /// The voter is in none of the route's approver groups.
    #[error("{0} may not decide requests of route {1}: approvers are members of {2}")]
    NotAnApprover(String, String, String),
    /// The requester may not approve their own request.
    #[error(
        "{0} asked for this statement and may not approve it (route {1} forbids self-approval)"
    )]
    SelfApproval(String, String),
    /// One vote per approver.
    #[error("{0} has already decided request {1}")]
    AlreadyVoted(String, ApprovalId),
    /// A denial needs a reason.
    #[error("a denial needs a comment saying why")]
    DenialWithoutComment,
}

impl ApprovalRequest {
    /// Whether the request is past its deadline at `now` (undecided, or
    /// approved and unused past its validity).
    pub fn lapsed(&self, now: Timestamp) -> bool {
        match self.state {
            ApprovalState::Pending => now >= self.expires_at,
            ApprovalState::Approved => self.valid_until.is_some_and(|v| now >= v),
            _ => false,
        }
    }

    /// Takes `voter`'s decision under `route`. A denial ends the request; the
    /// `approvals_needed`-th approval approves it.
    pub fn vote(
        &mut self,
        route: &ApprovalRoute,
        voter: &Identity,
        approve: bool,
        comment: &str,
        now: Timestamp,
    ) -> Result<ApprovalState, VoteRefused> {
        if self.lapsed(now) {
            self.state = ApprovalState::Expired;
        }
        if self.state != ApprovalState::Pending {
            return Err(VoteRefused::NotPending(
                self.id.clone(),
                self.state.as_str(),
            ));
        }
        if !voter
            .groups
            .iter()
            .any(|g| route.approver_groups.contains(g))
        {
            return Err(VoteRefused::NotAnApprover(
                voter.subject.clone(),
                route.name.clone(),
                route.approver_groups.join(", "),
            ));
        }
        if approve && !route.allow_self_approval && voter.subject == self.requester.subject {
            return Err(VoteRefused::SelfApproval(
                voter.subject.clone(),
                route.name.clone(),
            ));
        }
        if self.votes.iter().any(|v| v.approver == voter.subject) {
            return Err(VoteRefused::AlreadyVoted(
                voter.subject.clone(),
                self.id.clone(),
            ));
        }
        if !approve && comment.trim().is_empty() {
            return Err(VoteRefused::DenialWithoutComment);
        }
        self.votes.push(ApprovalVote {
            approver: voter.subject.clone(),
            approve,
            comment: comment.to_string(),
            at: now,
        });
        let approvals = self.votes.iter().filter(|v| v.approve).count() as u32;
        if !approve {
            self.state = ApprovalState::Denied;
        } else if approvals >= route.approvals_needed {
            self.state = ApprovalState::Approved;
            // Hold mode too: a held client that gave up (or whose gateway
            // restarted) may run it again within the window.
            self.valid_until = Some(now.plus(route.valid_for));
        }
        Ok(self.state)
    }
}

/// What an approval is bound to: SHA-256 over the caller's subject, the
/// connection, the protocol, the exact statement text and its parameters,
/// each length-prefixed so no two different statements share one.
pub fn statement_fingerprint(
    subject: &str,
    connection: &str,
    protocol: &str,
    text: &str,
    params: &[Option<&[u8]>],
) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in [subject, connection, protocol, text] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    h.update((params.len() as u64).to_be_bytes());
    for p in params {
        match p {
            None => h.update(u64::MAX.to_be_bytes()),
            Some(b) => {
                h.update((b.len() as u64).to_be_bytes());
                h.update(b);
            }
        }
    }
    hex(&h.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(subject: &str, groups: &[&str]) -> Identity {
        Identity::with_service_token(subject, groups.iter().map(|g| g.to_string()).collect(), "t")
    }

    fn route(needed: u32, mode: ApprovalMode) -> ApprovalRoute {
        ApprovalRoute {
            name: "dba".into(),
            approver_groups: vec!["dba-leads".into()],
            approvals_needed: needed,
            allow_self_approval: false,
            mode,
            request_ttl: Duration::from_secs(3600),
            hold_timeout: Duration::from_secs(300),
            valid_for: Duration::from_secs(900),
        }
    }

    fn request(now: Timestamp) -> ApprovalRequest {
        ApprovalRequest {
            id: ApprovalId::new(),
            route: "dba".into(),
            requester: who("ci-deploy", &["ci", "dba-leads"]),
            connection: "app-db".into(),
            session: SessionId::new(),
            statement_seq: 3,
            text: "DELETE FROM customers".into(),
            params: Vec::new(),
            fingerprint: statement_fingerprint(
                "ci-deploy",
                "app-db",
                "simple",
                "DELETE FROM customers",
                &[],
            ),
            policies: vec!["delete-needs-approval".into()],
            analysis: String::new(),
            reason: None,
            created_at: now,
            expires_at: now.plus(Duration::from_secs(3600)),
            state: ApprovalState::Pending,
            votes: Vec::new(),
            valid_until: None,
            used_at: None,
            max_rows: None,
        }
    }

    #[test]
    fn votes_follow_the_route() {
        let now = Timestamp::now();
        let r = route(2, ApprovalMode::Request);
        let mut q = request(now);
        let outsider = who("mallory", &["ci"]);
        assert!(matches!(
            q.vote(&r, &outsider, true, "", now),
            Err(VoteRefused::NotAnApprover(..))
        ));
        let requester = q.requester.clone();
        assert!(matches!(
            q.vote(&r, &requester, true, "", now),
            Err(VoteRefused::SelfApproval(..))
        ));
        let alice = who("alice", &["dba-leads"]);
        assert_eq!(
            q.vote(&r, &alice, true, "ok", now),
            Ok(ApprovalState::Pending)
        );
        assert!(matches!(
            q.vote(&r, &alice, true, "again", now),
            Err(VoteRefused::AlreadyVoted(..))
        ));
        let bob = who("bob", &["dba-leads"]);
        assert_eq!(q.vote(&r, &bob, true, "", now), Ok(ApprovalState::Approved));
        assert_eq!(q.valid_until, Some(now.plus(Duration::from_secs(900))));
        assert!(matches!(
            q.vote(&r, &who("carol", &["dba-leads"]), true, "", now),
            Err(VoteRefused::NotPending(_, "approved"))
        ));
        assert!(q.lapsed(now.plus(Duration::from_secs(901))));
    }

    #[test]
    fn a_denial_ends_the_request_and_needs_a_reason() {
        let now = Timestamp::now();
        let r = route(1, ApprovalMode::Hold);
        let mut q = request(now);
        let alice = who("alice", &["dba-leads"]);
        assert_eq!(
            q.vote(&r, &alice, false, " ", now),
            Err(VoteRefused::DenialWithoutComment)
        );
        assert_eq!(
            q.vote(&r, &alice, false, "not during business hours", now),
            Ok(ApprovalState::Denied)
        );
        assert_eq!(q.valid_until, None, "a denial opens no window");
    }

    #[test]
    fn an_undecided_request_expires() {
        let now = Timestamp::now();
        let r = route(1, ApprovalMode::Request);
        let mut q = request(now);
        let later = now.plus(Duration::from_secs(3601));
        assert!(q.lapsed(later));
        assert!(matches!(
            q.vote(&r, &who("alice", &["dba-leads"]), true, "", later),
            Err(VoteRefused::NotPending(_, "expired"))
        ));
        assert_eq!(q.state, ApprovalState::Expired);
    }

    #[test]
    fn fingerprints_bind_every_part() {
        let base = statement_fingerprint(
            "a",
            "db",
            "extended",
            "DELETE FROM t WHERE id = $1",
            &[Some(b"7")],
        );
        assert_eq!(base.len(), 64);
        for other in [
            statement_fingerprint(
                "b",
                "db",
                "extended",
                "DELETE FROM t WHERE id = $1",
                &[Some(b"7")],
            ),
            statement_fingerprint(
                "a",
                "db2",
                "extended",
                "DELETE FROM t WHERE id = $1",
                &[Some(b"7")],
            ),
            statement_fingerprint(
                "a",
                "db",
                "simple",
                "DELETE FROM t WHERE id = $1",
                &[Some(b"7")],
            ),
            statement_fingerprint(
                "a",
                "db",
                "extended",
                "DELETE FROM t WHERE id = $1 ",
                &[Some(b"7")],
            ),
            statement_fingerprint(
                "a",
                "db",
                "extended",
                "DELETE FROM t WHERE id = $1",
                &[Some(b"8")],
            ),
            statement_fingerprint(
                "a",
                "db",
                "extended",
                "DELETE FROM t WHERE id = $1",
                &[None],
            ),
            statement_fingerprint("a", "db", "extended", "DELETE FROM t WHERE id = $1", &[]),
            // Length prefixes: moving a boundary changes the fingerprint.
            statement_fingerprint(
                "ad",
                "b",
                "extended",
                "DELETE FROM t WHERE id = $1",
                &[Some(b"7")],
            ),
        ] {
            assert_ne!(base, other);
        }
    }

    #[test]
    fn approval_events_repeat_an_excerpt_not_the_text() {
        let now = Timestamp::now();
        let mut r = request(now);
        // Multi-byte characters across the cut.
        r.text = format!("UPDATE t SET note = '{}'", "é".repeat(300));
        let ev = crate::AuditEvent::approval_requested(&r);
        let text = ev.payload["text"].as_str().unwrap();
        assert!(
            text.ends_with('…') && text.len() <= crate::APPROVAL_TEXT_EXCERPT + 3,
            "{text}"
        );
        assert!(r.text.starts_with(text.trim_end_matches('…')));
        assert_eq!(ev.payload["text_bytes"], r.text.len());
        assert_eq!(ev.payload["statement_seq"], 3);
        let vote = ApprovalVote {
            approver: "dana".into(),
            approve: true,
            comment: "fine".into(),
            at: now,
        };
        for ev in [
            crate::AuditEvent::approval_decided(&r, &vote),
            crate::AuditEvent::approval_expired(&r, ApprovalState::Pending),
        ] {
            assert_eq!(ev.payload["text"].as_str(), Some(text));
            assert_eq!(ev.payload["statement_seq"], 3);
            assert_eq!(ev.payload["session"], serde_json::json!(r.session));
        }
        // A short statement is repeated whole.
        let short = request(now);
        let ev = crate::AuditEvent::approval_requested(&short);
        assert_eq!(ev.payload["text"], "DELETE FROM customers");
    }
}
