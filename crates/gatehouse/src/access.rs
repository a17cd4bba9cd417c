//! `gatehouse access review`: who can reach what, and the sign-off that
//! records a review in the evidence log (through the running gateway).

use crate::admin::AdminClient;
use anyhow::Result;
use gatehouse_api::{AccessReview, SignOffRequest};
use gatehouse_policy::ReachRow;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::process::ExitCode;

/// `gatehouse access …`.
#[derive(clap::Subcommand)]
pub enum AccessCommand {
    /// List every identity with a usable credential and what the policy in
    /// force lets it reach; with --sign-off, record that you reviewed it.
    Review(ReviewArgs),
}

/// Options of `access review`.
#[derive(clap::Args)]
pub struct ReviewArgs {
    /// Record in the evidence log that the review was performed.
    #[arg(long, requires = "reviewer")]
    sign_off: bool,
    /// Who performed the review (with --sign-off).
    #[arg(long)]
    reviewer: Option<String>,
    /// Findings or conclusions to record with the sign-off.
    #[arg(long, default_value = "")]
    notes: String,
    /// The digest of the review you read: the sign-off is refused if access
    /// changed since.
    #[arg(long, requires = "sign_off")]
    digest: Option<String>,
    /// Ask the policies about a caller at this address.
    #[arg(long)]
    client_ip: Option<IpAddr>,
    /// JSON output.
    #[arg(long)]
    json: bool,
}

/// Runs an `access` command.
pub async fn run(cmd: &AccessCommand, client: &AdminClient) -> Result<ExitCode> {
    let AccessCommand::Review(a) = cmd;
    let review = match (&a.reviewer, a.sign_off) {
        (Some(reviewer), true) => {
            let signed = client
                .sign_off_access_review(&SignOffRequest {
                    reviewer: reviewer.clone(),
                    notes: a.notes.clone(),
                    digest: a.digest.clone(),
                    client_ip: a.client_ip,
                })
                .await?;
            eprintln!(
                "access review {} signed off by {} and recorded in the evidence log",
                signed.review.digest, signed.reviewer
            );
            signed.review
        }
        _ => client.access_review(a.client_ip).await?,
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&review)?);
    } else {
        print!("{}", render(&review));
    }
    Ok(ExitCode::SUCCESS)
}

/// The review as text: per identity, per connection, a table × action grid.
pub fn render(r: &AccessReview) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Access review at {} (a caller at {}), digest {}",
        r.generated_at, r.client_ip, r.digest
    );
    for f in &r.policy_files {
        let _ = writeln!(out, "policy {} (sha256 {})", f.path, f.sha256);
    }
    if r.identities.is_empty() {
        out.push_str("\nNo identity holds a usable credential.\n");
    }
    for id in &r.identities {
        let groups = if id.groups.is_empty() {
            "none".to_string()
        } else {
            id.groups.join(", ")
        };
        let tokens: Vec<String> = id
            .tokens
            .iter()
            .map(|t| format!("{} (expires {})", t.id, t.expires_at))
            .collect();
        let _ = writeln!(
            out,
            "\n{} (groups: {groups}); tokens: {}",
            id.identity,
            tokens.join(", ")
        );
        render_reach(&mut out, &id.reach);
    }
    out
}

fn render_reach(out: &mut String, rows: &[ReachRow]) {
    let width = rows.iter().map(|r| r.table.len()).max().unwrap_or(0).max(5);
    for connect in rows.iter().filter(|r| r.action == "connect") {
        let _ = writeln!(
            out,
            "  {}: connect {}{}",
            connect.connection,
            connect.decision,
            policies(&connect.policies)
        );
        let on: Vec<&ReachRow> = rows
            .iter()
            .filter(|r| r.connection == connect.connection && r.action != "connect")
            .collect();
        if on.is_empty() {
            continue;
        }
        // Columns: the actions asked about on this connection, in the order
        // asked (statement kinds; HTTP methods; MCP actions; Kubernetes verbs).
        let mut actions: Vec<&str> = Vec::new();
        for r in &on {
            if !actions.contains(&r.action.as_str()) {
                actions.push(&r.action);
            }
        }
        let label = if on.iter().any(|r| r.action.starts_with("http:")) {
            "path"
        } else if on.iter().any(|r| r.action.starts_with("mcp:")) {
            "tool / resource"
        } else if on.iter().any(|r| r.action.starts_with("k8s:")) {
            "objects"
        } else {
            "table"
        };
        let width = width.max(label.len());
        let _ = write!(out, "    {label:width$}");
        for a in &actions {
            let _ = write!(out, "  {a:8}");
        }
        out.push('\n');
        let mut tables: Vec<&str> = on.iter().map(|r| r.table.as_str()).collect();
        tables.dedup();
        for t in tables {
            let _ = write!(out, "    {t:width$}");
            for a in &actions {
                let d = on
                    .iter()
                    .find(|r| r.table == t && r.action == *a)
                    .map_or("-", |r| r.decision.as_str());
                let _ = write!(out, "  {d:w$}", w = a.len().max(8));
            }
            out.push('\n');
        }
    }
}

fn policies(p: &[String]) -> String {
    if p.is_empty() {
        String::new()
    } else {
        format!(" ({})", p.join(", "))
    }
}
