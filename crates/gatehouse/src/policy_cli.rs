//! `gatehouse policy …`: validate, explain and test Cedar policies offline,
//! and reload them in the running gateway.

use crate::admin::AdminClient;
use crate::config::RawConfig;
use crate::policy_tools::{self, Question, TestFile};
use anyhow::{anyhow, bail, Result};
use clap::Subcommand;
use gatehouse_policy::PolicyEngine;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `gatehouse policy …`
#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Check policy files against the schema the gateway ships (default: the configuration's [policy] files).
    Validate {
        /// Policy files to check instead of the configuration's.
        files: Vec<PathBuf>,
        /// JSON output: {"ok", "files": [{"path", "sha256", "policies"}]} or {"ok": false, "problems"}.
        #[arg(long)]
        json: bool,
    },
    /// Show how a statement is analyzed and decided, and by which policies.
    Explain {
        /// Identity subject.
        #[arg(long)]
        identity: String,
        /// A group of the identity (repeatable).
        #[arg(long = "group")]
        groups: Vec<String>,
        /// Connection name (what the client puts in dbname).
        #[arg(long)]
        connection: String,
        /// The SQL.
        #[arg(long)]
        sql: String,
        /// The client's address.
        #[arg(long, default_value = "127.0.0.1")]
        client_ip: std::net::IpAddr,
        /// An OIDC claim of the identity, NAME=VALUE (repeatable): the identity
        /// is then an OIDC one, of the issuer its subject's prefix names.
        #[arg(long = "claim", value_parser = parse_claim)]
        claims: Vec<(String, String)>,
        /// Policy files instead of the configuration's (repeatable).
        #[arg(long = "policy")]
        policies: Vec<PathBuf>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Run a file of test cases ([[case]] identity, groups, connection, sql, expect); exits non-zero on a failure.
    Test {
        /// The TOML file of cases.
        file: PathBuf,
        /// Policy files instead of the configuration's (repeatable).
        #[arg(long = "policy")]
        policies: Vec<PathBuf>,
        /// JSON output: {"passed", "failed", "cases": [{"name", "expected", "got", "detail", "passed"}]}.
        #[arg(long)]
        json: bool,
    },
    /// Make the running gateway re-read its policy files (as SIGHUP does).
    Reload {
        /// JSON output: {"generation", "files": [{"path", "sha256", "policies"}]}.
        #[arg(long)]
        json: bool,
    },
}

/// `NAME=VALUE` of `--claim`.
pub fn parse_claim(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!(
            "{s:?}: write NAME=VALUE, e.g. repository=octo-org/app"
        )),
    }
}

/// Policy files from `--policy`, else the configuration's [policy] files.
fn policy_files(config: &Path, given: &[PathBuf]) -> Result<Vec<PathBuf>> {
    if !given.is_empty() {
        return Ok(given.to_vec());
    }
    let raw = RawConfig::parse(config).map_err(|p| anyhow!("{p}"))?;
    raw.require_policy_files().map_err(|p| anyhow!("{p}"))
}

/// The loaded policy, or `None` after printing its problems (as JSON with `json`).
fn load_policies(files: &[PathBuf], json: bool) -> Result<Option<PolicyEngine>> {
    match PolicyEngine::load(files) {
        Ok(e) => Ok(Some(e)),
        Err(problems) => {
            if json {
                let list: Vec<String> = problems.0.iter().map(ToString::to_string).collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({"ok": false, "problems": list}))?
                );
            } else {
                eprintln!("{problems}");
                eprintln!("{} problem(s) found", problems.0.len());
            }
            Ok(None)
        }
    }
}

/// Runs a policy command; `config` is the configuration file, `admin` and
/// `server` reach the running gateway (for `reload`).
pub async fn run(
    cmd: &PolicyCommand,
    config: &Path,
    admin: Option<&Path>,
    server: Option<&str>,
) -> Result<ExitCode> {
    match cmd {
        PolicyCommand::Validate { files, json } => {
            let files = policy_files(config, files)?;
            let Some(engine) = load_policies(&files, *json)? else {
                return Ok(ExitCode::from(2));
            };
            if *json {
                let files = gatehouse_api::PolicyFileSummary::of(&engine);
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({"ok": true, "files": files}))?
                );
                return Ok(ExitCode::SUCCESS);
            }
            for f in engine.files() {
                println!(
                    "{}: ok, {} polic{} (sha256 {})",
                    f.path.display(),
                    f.policies,
                    if f.policies == 1 { "y" } else { "ies" },
                    f.sha256
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Explain {
            identity,
            groups,
            connection,
            sql,
            client_ip,
            claims,
            policies,
            json,
        } => {
            let files = policy_files(config, policies)?;
            let Some(engine) = load_policies(&files, *json)? else {
                return Ok(ExitCode::from(2));
            };
            let q = Question {
                identity: identity.clone(),
                groups: groups.clone(),
                connection: connection.clone(),
                sql: sql.clone(),
                client_ip: *client_ip,
                claims: claims.iter().cloned().collect(),
            };
            let e = policy_tools::explain(&engine, &q);
            if *json {
                println!("{}", serde_json::to_string_pretty(&e.to_json())?);
            } else {
                print!("{}", policy_tools::render(&q, &e));
            }
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Test {
            file,
            policies,
            json,
        } => {
            let files = policy_files(config, policies)?;
            let Some(engine) = load_policies(&files, *json)? else {
                return Ok(ExitCode::from(2));
            };
            let text = std::fs::read_to_string(file)
                .map_err(|e| anyhow!("{}: cannot read: {e}", file.display()))?;
            let cases: TestFile = toml::from_str(&text)
                .map_err(|e| anyhow!("{}: {}", file.display(), e.to_string().trim()))?;
            for c in &cases.case {
                if !matches!(c.expect.as_str(), "allow" | "deny" | "review") {
                    bail!(
                        "{}: case {:?}: expect must be allow, deny or review, not {:?}",
                        file.display(),
                        c.name.as_deref().unwrap_or(&c.sql),
                        c.expect
                    );
                }
            }
            let outcomes = policy_tools::run_tests(&engine, &cases.case);
            let failed = outcomes.iter().filter(|o| !o.passed()).count();
            let code = if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            };
            if *json {
                let cases: Vec<_> = outcomes
                    .iter()
                    .map(|o| {
                        json!({"name": o.name, "expected": o.expected, "got": o.got, "detail": o.detail, "passed": o.passed()})
                    })
                    .collect();
                let report =
                    json!({"passed": outcomes.len() - failed, "failed": failed, "cases": cases});
                println!("{}", serde_json::to_string_pretty(&report)?);
                return Ok(code);
            }
            for o in &outcomes {
                let mark = if o.passed() { "ok  " } else { "FAIL" };
                println!(
                    "{mark} {} (expected {}, got {})",
                    o.name, o.expected, o.detail
                );
            }
            println!("{} passed, {} failed", outcomes.len() - failed, failed);
            Ok(code)
        }
        PolicyCommand::Reload { json } => {
            let client = AdminClient::new(admin, server)?;
            let r = client.reload_policy().await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&r)?);
                return Ok(ExitCode::SUCCESS);
            }
            for f in &r.files {
                println!("{}: {} policies (sha256 {})", f.path, f.policies, f.sha256);
            }
            eprintln!("policy reloaded: generation {}", r.generation);
            Ok(ExitCode::SUCCESS)
        }
    }
}
