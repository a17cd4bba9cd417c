//! Loading and validating policy files.

use crate::{PolicyEngine, SCHEMA};

/// The largest `@max_rows` (a trillion rows: any more is no cap).
const MAX_ROW_CAP: u64 = 1_000_000_000_000;
use cedar_policy::{Policy, PolicyId, PolicySet, Schema, ValidationMode, Validator};
use miette::Diagnostic;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// A loaded policy file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PolicyFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// Hex SHA-256 of its bytes, for the record of what was enforced.
    pub sha256: String,
    /// Policies it holds.
    pub policies: usize,
}

/// One problem with a policy file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyProblem {
    /// The file.
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for PolicyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}: {}", self.file.display(), self.reason),
            None => write!(f, "{}: {}", self.file.display(), self.reason),
        }
    }
}

/// Policies that cannot be loaded: every problem found.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct PolicyLoadError(pub Vec<PolicyProblem>);

impl fmt::Display for PolicyLoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The first labelled line of a diagnostic, and its full message.
fn describe(d: &dyn Diagnostic, text: &str) -> (Option<usize>, String) {
    let line = d
        .labels()
        .and_then(|mut l| l.next())
        .map(|l| line_of(text, l.offset()));
    let mut reason = d.to_string();
    if let Some(help) = d.help() {
        reason.push_str(&format!(" ({help})"));
    }
    (line, reason)
}

pub(crate) fn schema() -> Schema {
    // The schema is part of the binary and covered by tests; failing to parse it
    // is impossible in a built gateway.
    match Schema::from_cedarschema_str(SCHEMA) {
        Ok((s, _warnings)) => s,
        Err(e) => panic!("the built-in Cedar schema is invalid: {e}"),
    }
}

impl PolicyEngine {
    /// Reads, parses and validates policy files.
    pub fn load(paths: &[PathBuf]) -> Result<Self, PolicyLoadError> {
        let mut sources = Vec::new();
        let mut problems = Vec::new();
        for p in paths {
            match std::fs::read_to_string(p) {
                Ok(t) => sources.push((p.clone(), t)),
                Err(e) => problems.push(PolicyProblem {
                    file: p.clone(),
                    line: None,
                    reason: format!("cannot read the file: {e}"),
                }),
            }
        }
        if !problems.is_empty() {
            return Err(PolicyLoadError(problems));
        }
        Self::from_sources(&sources)
    }

    /// Parses and validates policy texts (name, text).
    pub fn from_sources(sources: &[(PathBuf, String)]) -> Result<Self, PolicyLoadError> {
        let schema = schema();
        let mut problems = Vec::new();
        let mut all = PolicySet::new();
        let mut without_approvals = PolicySet::new();
        let mut approval_routes = HashMap::new();
        let mut row_caps = HashMap::new();
        let mut row_cap_routes = HashMap::new();
        let mut files = Vec::new();
        // Where each policy came from, for validation errors.
        let mut origin: HashMap<String, usize> = HashMap::new();
        for (i, (path, text)) in sources.iter().enumerate() {
            let parsed = match PolicySet::from_str(text) {
                Ok(p) => p,
                Err(errs) => {
                    for e in errs.iter() {
                        let (line, reason) = describe(e, text);
                        problems.push(PolicyProblem {
                            file: path.clone(),
                            line,
                            reason,
                        });
                    }
                    continue;
                }
            };
            if parsed.templates().next().is_some() {
                problems.push(PolicyProblem {
                    file: path.clone(),
                    line: None,
                    reason: "policy templates (?principal, ?resource) are not supported; write concrete policies".into(),
                });
            }
            let mut count = 0;
            let file_name = path
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            for (n, policy) in parsed.policies().enumerate() {
                count += 1;
                let id = policy
                    .annotation("id")
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("{file_name}#{}", n + 1));
                let policy: Policy = policy.new_id(PolicyId::new(&id));
                if origin.insert(id.clone(), i).is_some() {
                    problems.push(PolicyProblem {
                        file: path.clone(),
                        line: None,
                        reason: format!(
                            "policy id {id:?} is used twice; @id annotations must be unique"
                        ),
                    });
                    continue;
                }
                let route = policy.annotation("approval").map(str::to_string);
                match (&route, policy.effect()) {
                    (Some(r), cedar_policy::Effect::Forbid) if r.trim().is_empty() => problems.push(PolicyProblem {
                        file: path.clone(),
                        line: None,
                        reason: format!("policy {id}: @approval needs a route name, e.g. @approval(\"dba\")"),
                    }),
                    (Some(_), cedar_policy::Effect::Permit) => problems.push(PolicyProblem {
                        file: path.clone(),
                        line: None,
                        reason: format!("policy {id}: @approval only makes sense on a forbid policy"),
                    }),
                    _ => {}
                }
                if let Some(cap) = policy.annotation("max_rows") {
                    let problem = match (cap.trim().parse::<u64>(), policy.effect()) {
                        (_, cedar_policy::Effect::Forbid) => Some(format!(
                            "policy {id}: @max_rows caps what a permit allows; put it on a permit policy"
                        )),
                        (Ok(n), _) if (1..=MAX_ROW_CAP).contains(&n) => {
                            row_caps.insert(id.clone(), n);
                            None
                        }
                        _ => Some(format!(
                            "policy {id}: @max_rows({cap:?}) must be a whole number of rows from 1 to {MAX_ROW_CAP}, e.g. @max_rows(\"100\")"
                        )),
                    };
                    if let Some(reason) = problem {
                        problems.push(PolicyProblem {
                            file: path.clone(),
                            line: None,
                            reason,
                        });
                    }
                }
                if let Some(route) = policy.annotation("max_rows_approval") {
                    let problem = if policy.annotation("max_rows").is_none() {
                        Some(format!(
                            "policy {id}: @max_rows_approval names where writes over @max_rows go; add @max_rows(\"N\") to the policy"
                        ))
                    } else if route.trim().is_empty() {
                        Some(format!(
                            "policy {id}: @max_rows_approval needs a route name, e.g. @max_rows_approval(\"dba\")"
                        ))
                    } else {
                        row_cap_routes.insert(id.clone(), route.trim().to_string());
                        None
                    };
                    if let Some(reason) = problem {
                        problems.push(PolicyProblem {
                            file: path.clone(),
                            line: None,
                            reason,
                        });
                    }
                }
                let is_approval = route.is_some();
                if let Some(r) = route {
                    approval_routes.insert(id.clone(), r);
                }
                if !is_approval {
                    // Ids are unique (checked above), so adding cannot fail.
                    let _ = without_approvals.add(policy.clone());
                }
                let _ = all.add(policy);
            }
            let mut hasher = Sha256::new();
            hasher.update(text.as_bytes());
            files.push(crate::PolicyFile {
                path: path.clone(),
                sha256: hex::encode(hasher.finalize()),
                policies: count,
            });
        }
        let validation = Validator::new(schema.clone()).validate(&all, ValidationMode::Strict);
        for e in validation.validation_errors() {
            let idx = origin
                .get(e.policy_id().to_string().as_str())
                .copied()
                .unwrap_or(0);
            let (path, text) = &sources[idx.min(sources.len().saturating_sub(1))];
            let (line, reason) = describe(e, text);
            problems.push(PolicyProblem {
                file: path.clone(),
                line,
                reason,
            });
        }
        if !problems.is_empty() {
            return Err(PolicyLoadError(problems));
        }
        // Conservative: any mention of a time attribute, even in a string, counts.
        let uses_time = all.policies().any(|p| {
            let text = p.to_string();
            ["now", "hour", "weekday"].iter().any(|w| {
                text.match_indices(w).any(|(i, _)| {
                    let before = text[..i].chars().next_back();
                    let after = text[i + w.len()..].chars().next();
                    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
                    !word(before) && !word(after)
                })
            })
        });
        // The action groups (`http:read` ⊃ `http:GET`), for requests whose
        // action belongs to one: Cedar resolves `action in …` from entities.
        let action_entities = schema
            .action_entities()
            .map(|e| {
                e.iter()
                    .map(|a| (a.uid().id().unescaped().to_string(), a.clone()))
                    .collect()
            })
            .unwrap_or_default();
        Ok(PolicyEngine {
            names: crate::Names::new(),
            action_entities,
            cache: crate::BuiltValues::default(),
            uses_time,
            all,
            without_approvals,
            approval_routes,
            row_caps,
            row_cap_routes,
            files,
        })
    }
}
