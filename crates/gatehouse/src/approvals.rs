//! `gatehouse approvals …`: list, read and decide approval requests through
//! the running gateway. Deciding takes the approver's own Gatehouse token
//! (`--token` or `GATEHOUSE_TOKEN`); listing and reading also work with the
//! admin key.

use crate::admin::AdminClient;
use anyhow::{bail, Result};
use gatehouse_api::ApprovalFilter;
use gatehouse_core::{ApprovalMode, ApprovalRequest, ApprovalState, Timestamp};
use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

/// `gatehouse approvals …`.
#[derive(clap::Subcommand)]
pub enum ApprovalsCommand {
    /// List approval requests, newest first.
    List {
        /// Only pending requests.
        #[arg(long)]
        pending: bool,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// JSON output.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        token: TokenArg,
    },
    /// Show one request: who asked, the exact statement, the votes.
    Show {
        /// The request id, or a unique prefix of it (at least 4 characters).
        id: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        token: TokenArg,
    },
    /// Approve a request (as an approver of its route).
    Approve {
        /// The request id, or a unique prefix of it (at least 4 characters).
        id: String,
        /// Why.
        #[arg(long, default_value = "")]
        comment: String,
        /// JSON output: the request as decided and what happened.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        token: TokenArg,
    },
    /// Deny a request (as an approver of its route); a comment is required.
    Deny {
        /// The request id, or a unique prefix of it (at least 4 characters).
        id: String,
        /// Why (required).
        #[arg(long)]
        comment: String,
        /// JSON output: the request as decided and what happened.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        token: TokenArg,
    },
}

/// The approver's credential.
#[derive(clap::Args)]
pub struct TokenArg {
    /// Your Gatehouse token (default: $GATEHOUSE_TOKEN).
    #[arg(long, env = "GATEHOUSE_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

impl ApprovalsCommand {
    fn token(&self) -> &TokenArg {
        match self {
            Self::List { token, .. }
            | Self::Show { token, .. }
            | Self::Approve { token, .. }
            | Self::Deny { token, .. } => token,
        }
    }
}

/// Runs an `approvals` command against the gateway at `--config`/`--server`:
/// with the approver's token when given, else the admin key (read only).
pub async fn run(
    cmd: &ApprovalsCommand,
    config: Option<&Path>,
    server: Option<&str>,
) -> Result<ExitCode> {
    let client = match &cmd.token().token {
        Some(t) => AdminClient::with_token(config, server, t)?,
        None => AdminClient::new(config, server)?,
    };
    match cmd {
        ApprovalsCommand::List {
            pending,
            limit,
            json,
            ..
        } => {
            let list = client
                .approvals(&ApprovalFilter {
                    state: pending.then_some(ApprovalState::Pending),
                    limit: Some(*limit),
                })
                .await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print!("{}", render_list(&list, Timestamp::now()));
            }
        }
        ApprovalsCommand::Show { id, json, .. } => {
            let r = client.approval(id).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                print!("{}", render(&r));
            }
        }
        ApprovalsCommand::Approve {
            id,
            comment,
            json,
            token,
        } => {
            decide(token, client, id, true, comment, *json).await?;
        }
        ApprovalsCommand::Deny {
            id,
            comment,
            json,
            token,
        } => {
            if comment.trim().is_empty() {
                bail!("--comment: say why the statement is denied; the requester and the auditor read it");
            }
            decide(token, client, id, false, comment, *json).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn decide(
    token: &TokenArg,
    client: AdminClient,
    id: &str,
    approve: bool,
    comment: &str,
    json: bool,
) -> Result<()> {
    if token.token.is_none() {
        bail!("deciding needs your own Gatehouse token: pass --token or set GATEHOUSE_TOKEN (the admin key cannot approve)");
    }
    let decided = client.decide_approval(id, approve, comment).await?;
    let r = &decided.request;
    let what = match r.state {
        ApprovalState::Approved if decided.mode == Some(ApprovalMode::Hold) => {
            held_outcome(&client, r).await
        }
        ApprovalState::Approved => match r.valid_until {
            Some(until) => format!(
                "approved: {} may now run the statement again, once, until {until}",
                r.requester.subject
            ),
            None => "approved".to_string(),
        },
        ApprovalState::Pending => {
            let have = r.votes.iter().filter(|v| v.approve).count();
            format!("your approval is recorded ({have} so far); more approvers are needed")
        }
        ApprovalState::Denied if decided.mode == Some(ApprovalMode::Hold) => {
            "denied: the held statement is refused in its session".to_string()
        }
        ApprovalState::Denied => "denied".to_string(),
        other => other.as_str().to_string(),
    };
    if json {
        let out = serde_json::json!({
            "request": r,
            "mode": decided.mode,
            "outcome": what,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        eprintln!("request {}: {what}", r.id);
    }
    Ok(())
}

/// How long `approve` watches a held statement start once released.
const HELD_RUN_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// What became of a held statement just approved: it runs in the session
/// that waited (the request turns `used`), or, when that session stopped
/// waiting, the caller may run it again until the approval lapses.
async fn held_outcome(client: &AdminClient, r: &ApprovalRequest) -> String {
    let deadline = tokio::time::Instant::now() + HELD_RUN_WAIT;
    loop {
        match client.approval(&r.id.to_string()).await {
            Ok(now) if now.state == ApprovalState::Used => {
                return format!(
                    "approved: the held statement was released and ran in {}'s session",
                    r.requester.subject
                )
            }
            Ok(now) if now.state != ApprovalState::Approved => {
                return format!("approved, then {}", now.state.as_str())
            }
            _ => {}
        }
        if tokio::time::Instant::now() >= deadline {
            let until = r
                .valid_until
                .map(|u| format!(", until {u}"))
                .unwrap_or_default();
            return format!(
                "approved: the held statement was released, but its session no longer waits \
                 (the hold timed out or the client left); {} may run it again, once{until}",
                r.requester.subject
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

fn render_list(list: &[ApprovalRequest], now: Timestamp) -> String {
    if list.is_empty() {
        return "no approval requests\n".into();
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<36}  {:<8}  {:<6}  {:<16}  {:<12}  STATEMENT",
        "ID", "STATE", "ROUTE", "REQUESTER", "CONNECTION"
    );
    for r in list {
        let state = if r.lapsed(now) {
            "expiring"
        } else {
            r.state.as_str()
        };
        let text: String = r.text.chars().take(60).collect();
        let _ = writeln!(
            out,
            "{:<36}  {:<8}  {:<6}  {:<16}  {:<12}  {}",
            r.id,
            state,
            r.route,
            r.requester.subject,
            r.connection,
            text.replace('\n', " ")
        );
    }
    out
}

/// One request, as an approver reads it before deciding.
pub fn render(r: &ApprovalRequest) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "request    {}", r.id);
    let _ = writeln!(out, "state      {}", r.state.as_str());
    let _ = writeln!(out, "route      {}", r.route);
    let _ = writeln!(
        out,
        "requester  {} (groups: {})",
        r.requester.subject,
        r.requester.groups.join(", ")
    );
    let _ = writeln!(out, "connection {}", r.connection);
    let _ = writeln!(
        out,
        "session    {} (statement {})",
        r.session, r.statement_seq
    );
    let _ = writeln!(out, "needs      {}", r.analysis);
    let _ = writeln!(out, "policies   {}", r.policies.join(", "));
    if let Some(reason) = &r.reason {
        let _ = writeln!(out, "reason     {reason}");
    }
    let _ = writeln!(out, "asked      {}, expires {}", r.created_at, r.expires_at);
    if let Some(u) = r.valid_until {
        let _ = writeln!(out, "valid      until {u}");
    }
    if let Some(u) = r.used_at {
        let _ = writeln!(out, "used       {u}");
    }
    let _ = writeln!(out, "statement\n  {}", r.text.replace('\n', "\n  "));
    for (i, p) in r.params.iter().enumerate() {
        let _ = writeln!(out, "  ${} = {}", i + 1, p.as_deref().unwrap_or("NULL"));
    }
    for v in &r.votes {
        let _ = writeln!(
            out,
            "{} by {} at {}{}",
            if v.approve { "approved" } else { "denied" },
            v.approver,
            v.at,
            if v.comment.is_empty() {
                String::new()
            } else {
                format!(": {}", v.comment)
            }
        );
    }
    out
}
