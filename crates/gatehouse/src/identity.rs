//! Workload identity wiring: the authenticator `serve` uses, and
//! `gatehouse identity inspect` for debugging a token against the
//! configuration without a running gateway.

use crate::config::{GatewayConfig, RawConfig};
use crate::output::oidc_source;
use anyhow::{anyhow, Result};
use gatehouse_core::{Identity, IdentitySource, Store, Timestamp};
use gatehouse_identity::oidc::OidcVerifier;
use gatehouse_identity::{Authenticator, CredentialKind};
use gatehouse_policy::{ConnectRequest, Decision, PolicyEngine};
use serde_json::json;
use std::fmt::Write as _;
use std::io::Read as _;
use std::net::IpAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use tokio::task::JoinHandle;

/// The authenticator for `config`, and the task keeping OIDC keys fresh
/// (none without issuers). Keys are fetched in the background: an issuer
/// that is down at start-up does not stop the gateway; its tokens are
/// refused with the reason until its keys can be fetched.
pub fn authenticator(
    config: &GatewayConfig,
    store: Arc<dyn Store>,
) -> Result<(Authenticator, Option<JoinHandle<()>>)> {
    if config.oidc_issuers.is_empty() {
        return Ok((Authenticator::new(store, None), None));
    }
    let verifier =
        Arc::new(OidcVerifier::over_https(config.oidc_issuers.clone()).map_err(|e| anyhow!(e))?);
    for i in verifier.issuers() {
        tracing::info!(issuer = %i.name, url = %i.issuer, audiences = ?i.audiences, "trusting OIDC issuer");
    }
    let task = tokio::spawn(verifier.clone().keep_fresh());
    Ok((Authenticator::new(store, Some(verifier)), Some(task)))
}

/// `gatehouse identity …`.
#[derive(clap::Subcommand)]
pub enum IdentityCommand {
    /// Validate a token against the configured issuers and show the identity
    /// it proves, and where the policy lets it connect. Reads the token from
    /// stdin when none is given (keeps it out of shell history).
    Inspect {
        /// The token, or `-` for stdin.
        token: Option<String>,
        /// Ask the policies about a caller at this address.
        #[arg(long, default_value = "127.0.0.1")]
        client_ip: IpAddr,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

/// Runs an `identity` command.
pub async fn run(cmd: &IdentityCommand, config: &Path) -> Result<ExitCode> {
    let IdentityCommand::Inspect {
        token,
        client_ip,
        json,
    } = cmd;
    let token = match token.as_deref() {
        None | Some("-") => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s)?;
            s.trim().to_string()
        }
        Some(t) => t.trim().to_string(),
    };
    match CredentialKind::of(&token) {
        CredentialKind::Jwt => {}
        CredentialKind::ServiceToken => {
            eprintln!("this is a Gatehouse service token, not an OIDC token; `gatehouse token list` shows its identity");
            return Ok(ExitCode::from(1));
        }
        CredentialKind::Unknown => {
            eprintln!(
                "not a JWT (expected three base64url parts separated by dots, starting with eyJ)"
            );
            return Ok(ExitCode::from(1));
        }
    }
    let raw = match RawConfig::parse(config) {
        Ok(r) => r,
        Err(p) => {
            eprintln!("{p}");
            return Ok(ExitCode::from(2));
        }
    };
    let issuers = match raw.oidc_issuers() {
        Ok(i) if i.is_empty() => {
            eprintln!(
                "{}: no [[identity.oidc]] issuer is configured, so no OIDC token can be accepted",
                config.display()
            );
            return Ok(ExitCode::from(2));
        }
        Ok(i) => i,
        Err(p) => {
            eprintln!("{p}");
            return Ok(ExitCode::from(2));
        }
    };
    let verifier = OidcVerifier::over_https(issuers).map_err(|e| anyhow!(e))?;
    for s in verifier.refresh_all().await {
        if let Some(e) = s.last_error {
            eprintln!("warning: issuer {}: {e}", s.issuer);
        }
    }
    let identity = match verifier.verify(&token, Timestamp::now()).await {
        Ok(a) => a.into_identity(),
        Err(e) => {
            eprintln!("refused: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    let engine = match raw.policy_files() {
        Some(files) if !files.is_empty() => {
            Some(PolicyEngine::load(&files).map_err(|p| anyhow!("{p}"))?)
        }
        _ => None,
    };
    let reach: Vec<(String, Decision)> = match &engine {
        None => Vec::new(),
        Some(engine) => raw
            .connection_kinds()
            .into_iter()
            .map(|(c, kind)| {
                let d = engine.decide_connect(&ConnectRequest {
                    identity: &identity,
                    connection: &c,
                    kind: &kind,
                    client_ip: *client_ip,
                    now: Timestamp::now(),
                });
                (c, d)
            })
            .collect(),
    };
    if *json {
        let connect: Vec<_> = reach
            .iter()
            .map(|(c, d)| json!({"connection": c, "decision": d.name(), "reason": d.reason(), "policies": d.policies()}))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"identity": identity, "connect": connect}))?
        );
    } else {
        print!("{}", describe(&identity, &reach));
    }
    Ok(ExitCode::SUCCESS)
}

/// The human-readable report of `identity inspect`.
fn describe(identity: &Identity, reach: &[(String, Decision)]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "token valid");
    let _ = writeln!(out, "  subject     {}", identity.subject);
    let groups = if identity.groups.is_empty() {
        "none".to_string()
    } else {
        identity.groups.join(", ")
    };
    let _ = writeln!(out, "  groups      {groups}");
    if let IdentitySource::Oidc(o) = &identity.source {
        let _ = writeln!(out, "  source      {}", oidc_source(o));
        let expires = Timestamp::from_unix_millis(o.expires_at.saturating_mul(1000));
        let _ = writeln!(out, "  expires     {}", expires.rfc3339());
        if let Some(id) = &o.token_id {
            let _ = writeln!(out, "  token id    {id}");
        }
        if !o.claims.is_empty() {
            let _ = writeln!(
                out,
                "  attributes  (policy tags: principal.getTag(\"name\"))"
            );
            for (k, v) in &o.claims {
                let _ = writeln!(out, "    {k:<22} {v}");
            }
        }
    }
    if reach.is_empty() {
        let _ = writeln!(
            out,
            "no policy configured: every connection would be refused"
        );
    }
    for (c, d) in reach {
        match d {
            Decision::Allow { policies, .. } => {
                let _ = writeln!(out, "  connect {c:<16} allowed by {}", policies.join(", "));
            }
            other => {
                let _ = writeln!(
                    out,
                    "  connect {c:<16} refused: {}",
                    other.reason().unwrap_or("")
                );
            }
        }
    }
    out
}
