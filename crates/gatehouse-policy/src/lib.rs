//! Gatehouse policy: Cedar policies decide what each identity may do.
//!
//! Principal: the identity, with its groups as parents. Actions: `connect`,
//! and one per statement kind (`select`, `delete`, `ddl`…). Resource: the
//! connection, or a table of it. Context: the statement's flags, the client
//! address and the time. Policies are validated against the schema the
//! gateway ships ([`SCHEMA`]); default deny.
//!
//! A `forbid` annotated `@approval("route")` means "not without approval from
//! that route": when only such policies deny a request that other policies
//! permit, the decision is [`Decision::Review`].

mod decide;
mod handle;
mod http;
mod kube;
mod load;
mod reach;
mod reach_api;
mod ssh;

pub use decide::{ConnectRequest, StatementRequest};
pub use handle::PolicyHandle;
pub use http::{HttpRequestFacts, McpRequestFacts};
pub use kube::{command_line, KubeRequestFacts, KUBE_ACTIONS};
pub use load::{PolicyFile, PolicyLoadError, PolicyProblem};
pub use reach::{ReachRow, OTHER_TABLES};
pub use ssh::{shell_words, SshRequestFacts, SSH_ACTIONS};

use cedar_policy::{EntityId, EntityTypeName, EntityUid, PolicySet};
use std::collections::HashMap;
use std::str::FromStr;

/// The Cedar schema policies are validated against.
pub const SCHEMA: &str = include_str!("gatehouse.cedarschema");

/// What the policy says about a request.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// Permitted.
    Allow {
        /// The permit policies that allowed it.
        policies: Vec<String>,
        /// The most rows one statement may change, when every permit that
        /// allowed one of its writes carries `@max_rows`.
        #[serde(skip_serializing_if = "Option::is_none")]
        row_cap: Option<RowCap>,
    },
    /// Refused.
    Deny {
        /// Why, readable by the caller.
        reason: String,
        /// The policies that forbade it (empty when nothing permitted it).
        policies: Vec<String>,
    },
    /// Permitted only with approval from a route.
    Review {
        /// Approval routes named by the forbidding policies.
        routes: Vec<String>,
        /// Why approval is needed.
        reason: String,
        /// The `@approval` policies that require it.
        policies: Vec<String>,
    },
}

impl Decision {
    /// `allow`, `deny` or `review`.
    pub fn name(&self) -> &'static str {
        match self {
            Decision::Allow { .. } => "allow",
            Decision::Deny { .. } => "deny",
            Decision::Review { .. } => "review",
        }
    }

    /// What a record keeps of it, decided in `mode` (in audit mode a refusal
    /// is a shadow: recorded and let through).
    pub fn recorded(&self, mode: PolicyMode) -> gatehouse_core::Decided {
        use gatehouse_core::Decided;
        match (self, mode) {
            (Decision::Allow { .. }, _) => Decided::Allow,
            (Decision::Deny { .. }, PolicyMode::Enforce) => Decided::Deny,
            (Decision::Review { .. }, PolicyMode::Enforce) => Decided::Review,
            (Decision::Deny { .. }, PolicyMode::Audit) => Decided::ShadowDeny,
            (Decision::Review { .. }, PolicyMode::Audit) => Decided::ShadowReview,
        }
    }

    /// Why it was refused or needs approval; `None` when allowed.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Decision::Allow { .. } => None,
            Decision::Deny { reason, .. } | Decision::Review { reason, .. } => Some(reason),
        }
    }

    /// The determining policies.
    pub fn policies(&self) -> &[String] {
        match self {
            Decision::Allow { policies, .. }
            | Decision::Deny { policies, .. }
            | Decision::Review { policies, .. } => policies,
        }
    }
}

/// A cap on the rows one statement may change (`@max_rows` on a permit).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RowCap {
    /// At most this many rows.
    pub rows: u64,
    /// The policy that sets it.
    pub policy: String,
    /// The approval route a write over it is filed with
    /// (`@max_rows_approval`); none: it is refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<String>,
}

impl Decision {
    /// An allow by `policies`, uncapped.
    pub fn allow(policies: Vec<String>) -> Self {
        Decision::Allow {
            policies,
            row_cap: None,
        }
    }
}

/// Whether decisions are enforced or only recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PolicyMode {
    /// Denials and reviews refuse the statement.
    #[default]
    Enforce,
    /// Shadow mode: what would be refused is recorded and let through.
    Audit,
}

impl PolicyMode {
    /// `enforce` or `audit`.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyMode::Enforce => "enforce",
            PolicyMode::Audit => "audit",
        }
    }

    /// What a record keeps of the mode.
    pub fn recorded(self) -> gatehouse_core::DecidedIn {
        match self {
            PolicyMode::Enforce => gatehouse_core::DecidedIn::Enforce,
            PolicyMode::Audit => gatehouse_core::DecidedIn::Audit,
        }
    }
}

/// The HTTP actions: `http:` and the request method (HEAD is decided as GET).
pub const HTTP_ACTIONS: &[&str] = &[
    "http:GET",
    "http:OPTIONS",
    "http:POST",
    "http:PUT",
    "http:PATCH",
    "http:DELETE",
];

/// The MCP actions: `mcp:` and the kind of message.
pub const MCP_ACTIONS: &[&str] = &[
    "mcp:session",
    "mcp:tools/list",
    "mcp:resources/list",
    "mcp:prompts/list",
    "mcp:tools/call",
    "mcp:resources/read",
    "mcp:prompts/get",
    "mcp:other",
];

/// Entity type names and action ids, parsed once: Cedar parses names with
/// its full grammar, far too slow to do per request.
pub(crate) struct Names {
    pub(crate) identity: EntityTypeName,
    pub(crate) group: EntityTypeName,
    pub(crate) connection: EntityTypeName,
    pub(crate) table: EntityTypeName,
    pub(crate) kube_object: EntityTypeName,
    pub(crate) ssh_account: EntityTypeName,
    pub(crate) actions: HashMap<&'static str, EntityUid>,
}

impl Names {
    fn new() -> Self {
        // These are fixed names of the shipped schema, covered by tests.
        let ty = |s: &str| {
            EntityTypeName::from_str(s).unwrap_or_else(|e| panic!("entity type {s}: {e}"))
        };
        let action = ty("Gatehouse::Action");
        let mut actions = HashMap::new();
        for name in std::iter::once("connect")
            .chain(gatehouse_sql::ActionKind::ALL.iter().map(|k| k.as_str()))
            .chain(HTTP_ACTIONS.iter().copied())
            .chain(MCP_ACTIONS.iter().copied())
            .chain(KUBE_ACTIONS.iter().copied())
            .chain(SSH_ACTIONS.iter().copied())
        {
            actions.insert(
                name,
                EntityUid::from_type_name_and_id(action.clone(), EntityId::new(name)),
            );
        }
        Self {
            identity: ty("Gatehouse::Identity"),
            group: ty("Gatehouse::Group"),
            connection: ty("Gatehouse::Connection"),
            table: ty("Gatehouse::Table"),
            kube_object: ty("Gatehouse::KubeObject"),
            ssh_account: ty("Gatehouse::SshAccount"),
            actions,
        }
    }
}

/// Values Cedar would otherwise build for every decision. Extension values
/// (`ip(…)`, `datetime(…)`) cost a parse each; building a principal with an
/// OIDC token's claims as tags made its decision 57 µs against 45 µs for a
/// service token (decision bench). Each is built once per engine, so a
/// policy reload starts afresh.
#[derive(Default)]
pub(crate) struct BuiltValues {
    pub(crate) ips: std::sync::Mutex<HashMap<std::net::IpAddr, cedar_policy::RestrictedExpression>>,
    pub(crate) second: std::sync::Mutex<Option<(i64, cedar_policy::RestrictedExpression)>>,
    /// The principal and its group entities, by the whole identity (claims,
    /// token id and all, so two tokens never share an entry).
    pub(crate) principals:
        std::sync::Mutex<HashMap<gatehouse_core::Identity, Vec<cedar_policy::Entity>>>,
}

/// A loaded, validated policy set.
pub struct PolicyEngine {
    names: Names,
    /// The schema's actions with their groups, by action id: a request
    /// carries only its own action's entity (what `action in` reads), not
    /// all of them, whose closure Cedar would compute again each time.
    action_entities: HashMap<String, cedar_policy::Entity>,
    cache: BuiltValues,
    all: PolicySet,
    /// The set without `@approval` forbids: does anything permit the request at all?
    without_approvals: PolicySet,
    /// `@approval` forbids: policy id -> route.
    approval_routes: HashMap<String, String>,
    /// `@max_rows` permits: policy id -> the most rows a statement may change.
    row_caps: HashMap<String, u64>,
    /// `@max_rows_approval` permits: policy id -> the route over-cap writes go to.
    row_cap_routes: HashMap<String, String>,
    files: Vec<PolicyFile>,
    uses_time: bool,
}

impl PolicyEngine {
    /// The files the policies came from, with their SHA-256.
    pub fn files(&self) -> &[PolicyFile] {
        &self.files
    }

    /// Whether any policy may read the time (`now`, `hour`, `weekday`). When
    /// none does, a decision depends only on who, where, from where and what,
    /// and may be cached for a session.
    pub fn uses_time(&self) -> bool {
        self.uses_time
    }

    /// `@approval` policies and the route each names (policy id → route).
    pub fn approval_routes(&self) -> &HashMap<String, String> {
        &self.approval_routes
    }

    /// `@max_rows_approval` policies and the route each names.
    pub fn row_cap_routes(&self) -> &HashMap<String, String> {
        &self.row_cap_routes
    }

    /// How many policies are loaded.
    pub fn policy_count(&self) -> usize {
        self.all.policies().count()
    }
}

#[cfg(test)]
mod tests;
