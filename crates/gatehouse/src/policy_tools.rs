//! Tools for policy authors: `gatehouse policy explain` and `gatehouse policy test`.
//! They run offline against the policy files, with the same analysis and
//! decision code the gateway runs.

use gatehouse_core::{Identity, IdentitySource, OidcSource, Timestamp};
use gatehouse_policy::{ConnectRequest, Decision, PolicyEngine, StatementRequest};
use gatehouse_sql::{analyze_uncached, Analysis, ParseMode, SqlError, StatementAnalysis};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;

/// A hypothetical request.
#[derive(Clone, Debug)]
pub struct Question {
    /// Identity subject.
    pub identity: String,
    /// Its groups.
    pub groups: Vec<String>,
    /// Connection name.
    pub connection: String,
    /// The SQL (one or more statements).
    pub sql: String,
    /// The client's address.
    pub client_ip: IpAddr,
    /// OIDC claims (policy tags); when any are given the identity is taken
    /// as an OIDC identity of the issuer its subject's prefix names.
    pub claims: BTreeMap<String, String>,
}

/// The identity a question describes.
fn question_identity(q: &Question) -> Identity {
    if q.claims.is_empty() {
        return Identity::with_service_token(
            q.identity.clone(),
            q.groups.clone(),
            "policy-explain",
        );
    }
    let (issuer, sub) = q
        .identity
        .split_once('/')
        .unwrap_or(("explain", &q.identity));
    Identity {
        subject: q.identity.clone(),
        groups: q.groups.clone(),
        source: IdentitySource::Oidc(Box::new(OidcSource {
            issuer: issuer.to_string(),
            iss: format!("policy-explain:{issuer}"),
            sub: sub.to_string(),
            client_id: None,
            token_id: None,
            expires_at: 0,
            claims: q.claims.clone(),
            delegation: None,
        })),
    }
}

/// The answer, with everything that led to it. As JSON (`--json`):
/// `{"analysis": {…} | null, "analysis_error": "…" | null, "connect": …,
/// "decision": …, "outcome": "allow" | "deny" | "review"}`.
#[derive(Clone, Debug, Serialize)]
pub struct Explanation {
    /// The analysis, or why the SQL cannot be analyzed.
    #[serde(flatten, serialize_with = "analysis_fields")]
    pub analysis: Result<Analysis, String>,
    /// May the identity connect?
    pub connect: Decision,
    /// What happens to the statement(s); the connect decision when that is not allow.
    pub decision: Decision,
}

impl Explanation {
    /// `allow`, `deny` or `review`.
    pub fn outcome(&self) -> &'static str {
        self.decision.name()
    }

    /// The `--json` form (see the type's docs).
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert("outcome".into(), self.outcome().into());
        }
        v
    }
}

/// `analysis` and `analysis_error`, one of them null, instead of Rust's
/// `{"Ok": …}` / `{"Err": …}`.
fn analysis_fields<S: serde::Serializer>(
    a: &Result<Analysis, String>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(Some(2))?;
    match a {
        Ok(analysis) => {
            m.serialize_entry("analysis", analysis)?;
            m.serialize_entry("analysis_error", &None::<String>)?;
        }
        Err(e) => {
            m.serialize_entry("analysis", &None::<Analysis>)?;
            m.serialize_entry("analysis_error", e)?;
        }
    }
    m.end()
}

/// Answers a question the way the gateway would.
pub fn explain(engine: &PolicyEngine, q: &Question) -> Explanation {
    let identity = question_identity(q);
    let now = Timestamp::now();
    let connect = engine.decide_connect(&ConnectRequest {
        identity: &identity,
        connection: &q.connection,
        kind: "postgres",
        client_ip: q.client_ip,
        now,
    });
    let analysis = analyze_uncached(&q.sql, ParseMode::default());
    let decision = match (&connect, &analysis) {
        (Decision::Allow { .. }, Ok(a)) => match resolve_executes(a) {
            Ok(statements) => {
                let refs: Vec<&StatementAnalysis> = statements.iter().collect();
                engine.decide_statements(&StatementRequest {
                    identity: &identity,
                    connection: &q.connection,
                    client_ip: q.client_ip,
                    now,
                    protocol: "simple",
                    approved: false,
                    statements: &refs,
                    search_path: &[],
                })
            }
            Err(reason) => Decision::Deny {
                reason,
                policies: Vec::new(),
            },
        },
        (Decision::Allow { .. }, Err(e)) => Decision::Deny {
            reason: e.to_string(),
            policies: Vec::new(),
        },
        (refused, _) => refused.clone(),
    };
    Explanation {
        analysis: analysis.map_err(|e: SqlError| e.to_string()),
        connect,
        decision,
    }
}

/// EXECUTE is decided as what an earlier PREPARE in the same input prepared.
fn resolve_executes(a: &Analysis) -> Result<Vec<StatementAnalysis>, String> {
    let mut out = Vec::new();
    for (i, st) in a.statements.iter().enumerate() {
        match &st.executes {
            Some(name) => {
                let prepared = a.statements[..i]
                    .iter()
                    .rev()
                    .find(|p| p.prepares.as_deref() == Some(name.as_str()))
                    .ok_or_else(|| format!("EXECUTE {name}: no PREPARE {name} precedes it"))?;
                out.push(prepared.clone());
            }
            None => out.push(st.clone()),
        }
    }
    Ok(out)
}

fn decision_line(d: &Decision) -> String {
    match d {
        Decision::Allow { policies, .. } => format!("allow (permitted by {})", policies.join(", ")),
        Decision::Deny { reason, policies } if policies.is_empty() => format!("deny: {reason}"),
        Decision::Deny { reason, policies } => format!("deny: {reason} [{}]", policies.join(", ")),
        Decision::Review {
            routes,
            reason,
            policies,
        } => format!(
            "review: {reason}; approval route {} [{}]",
            routes.join(", "),
            policies.join(", ")
        ),
    }
}

/// Human-readable explanation.
pub fn render(q: &Question, e: &Explanation) -> String {
    let mut out = String::new();
    let groups = if q.groups.is_empty() {
        "none".into()
    } else {
        q.groups.join(", ")
    };
    let _ = writeln!(
        out,
        "identity    {} (groups: {groups}) from {}",
        q.identity, q.client_ip
    );
    let _ = writeln!(
        out,
        "connect     {}: {}",
        q.connection,
        decision_line(&e.connect)
    );
    match &e.analysis {
        Ok(a) => {
            for (i, st) in a.statements.iter().enumerate() {
                let _ = writeln!(out, "statement {}: {}", i + 1, st.text);
                let _ = writeln!(out, "  kind      {} (operation {})", st.kind, st.operation);
                for act in &st.actions {
                    let table = act
                        .table
                        .as_ref()
                        .map(|t| format!(" on {}", t.qualified("public")))
                        .unwrap_or_else(|| format!(" on connection {}", q.connection));
                    let wh = match act.has_where {
                        Some(true) => " (with WHERE)",
                        Some(false) => " (no WHERE)",
                        None => "",
                    };
                    let _ = writeln!(out, "  action    {}{table}{wh}", act.kind);
                }
                if !st.functions.is_empty() {
                    let _ = writeln!(out, "  functions {}", st.functions.join(", "));
                }
                let flags = serde_json::to_value(&st.flags).unwrap_or_default();
                let on: Vec<String> = flags
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .filter(|(_, v)| v.as_bool() == Some(true))
                            .map(|(k, _)| k.clone())
                            .collect()
                    })
                    .unwrap_or_default();
                if !on.is_empty() {
                    let _ = writeln!(out, "  flags     {}", on.join(", "));
                }
            }
        }
        Err(e) => {
            let _ = writeln!(out, "statement   cannot be analyzed: {e}");
        }
    }
    let _ = writeln!(out, "decision    {}", decision_line(&e.decision));
    out
}

/// A file of policy test cases (TOML, `[[case]]` tables).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestFile {
    /// The cases.
    pub case: Vec<TestCase>,
}

/// One policy test case.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestCase {
    /// A name for the report (default: the SQL).
    pub name: Option<String>,
    /// Identity subject.
    pub identity: String,
    /// Its groups.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Connection name.
    pub connection: String,
    /// The SQL.
    pub sql: String,
    /// `allow`, `deny` or `review`.
    pub expect: String,
    /// Client address (default 127.0.0.1).
    pub client_ip: Option<IpAddr>,
    /// OIDC claims of the identity (policy tags), e.g. `{ repository = "octo-org/app" }`.
    #[serde(default)]
    pub claims: BTreeMap<String, String>,
}

/// A case's result.
#[derive(Debug, Serialize)]
pub struct TestOutcome {
    /// Its name.
    pub name: String,
    /// What was expected.
    pub expected: String,
    /// What the policy said.
    pub got: String,
    /// The decision in full.
    pub detail: String,
}

impl TestOutcome {
    /// Whether the policy said what was expected.
    pub fn passed(&self) -> bool {
        self.expected == self.got
    }
}

/// Runs every case.
pub fn run_tests(engine: &PolicyEngine, cases: &[TestCase]) -> Vec<TestOutcome> {
    cases
        .iter()
        .map(|c| {
            let q = Question {
                identity: c.identity.clone(),
                groups: c.groups.clone(),
                connection: c.connection.clone(),
                sql: c.sql.clone(),
                client_ip: c.client_ip.unwrap_or(IpAddr::from([127, 0, 0, 1])),
                claims: c.claims.clone(),
            };
            let e = explain(engine, &q);
            TestOutcome {
                name: c.name.clone().unwrap_or_else(|| c.sql.clone()),
                expected: c.expect.clone(),
                got: e.outcome().to_string(),
                detail: decision_line(&e.decision),
            }
        })
        .collect()
}
