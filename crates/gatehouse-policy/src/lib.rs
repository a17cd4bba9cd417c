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
mod load;

pub use decide::{ConnectRequest, StatementRequest};
pub use handle::PolicyHandle;
pub use load::{PolicyFile, PolicyLoadError, PolicyProblem};

use cedar_policy::{PolicySet, Schema};
use std::collections::HashMap;

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

    /// The determining policies.
    pub fn policies(&self) -> &[String] {
        match self {
            Decision::Allow { policies }
            | Decision::Deny { policies, .. }
            | Decision::Review { policies, .. } => policies,
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
}

/// A loaded, validated policy set.
pub struct PolicyEngine {
    schema: Schema,
    all: PolicySet,
    /// The set without `@approval` forbids: does anything permit the request at all?
    without_approvals: PolicySet,
    /// `@approval` forbids: policy id -> route.
    approval_routes: HashMap<String, String>,
    files: Vec<PolicyFile>,
}

impl PolicyEngine {
    /// The files the policies came from, with their SHA-256.
    pub fn files(&self) -> &[PolicyFile] {
        &self.files
    }

    /// How many policies are loaded.
    pub fn policy_count(&self) -> usize {
        self.all.policies().count()
    }
}

#[cfg(test)]
mod tests;
