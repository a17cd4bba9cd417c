//! Approval notifications: every filed, decided and expired request is
//! POSTed to the configured webhooks, as generic JSON or as a Slack message
//! with the statement and the commands to decide it.
//!
//! Each webhook has its own worker and bounded queue, so a slow or broken
//! endpoint delays only its own deliveries, never the data path (the desk
//! hands notices over without waiting) nor another webhook.

use crate::config::{WebhookFormat, WebhookSpec};
use gatehouse_core::{ApprovalNotice, ApprovalRequest, ApprovalState};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Notices queued for all webhooks together; beyond this they are dropped.
pub const QUEUE: usize = 1024;
/// Deliveries are tried this often at most…
const ATTEMPTS: u32 = 8;
/// …waiting this long before the second, doubling to at most 30 s.
const FIRST_RETRY: Duration = Duration::from_millis(250);

/// Starts one worker per webhook fed from `rx`; they end when the desk is gone.
pub fn start(
    webhooks: &[WebhookSpec],
    mut rx: mpsc::Receiver<ApprovalNotice>,
) -> anyhow::Result<JoinHandle<()>> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let mut senders = Vec::new();
    for w in webhooks {
        let (tx, wrx) = mpsc::channel::<ApprovalNotice>(QUEUE);
        senders.push(tx);
        tokio::spawn(deliver(w.clone(), client.clone(), wrx));
    }
    Ok(tokio::spawn(async move {
        while let Some(n) = rx.recv().await {
            for tx in &senders {
                if tx.try_send(n.clone()).is_err() {
                    tracing::error!(request = %n.request.id, "an approval webhook is too far behind; this notice is not sent to it");
                }
            }
        }
    }))
}

async fn deliver(w: WebhookSpec, client: reqwest::Client, mut rx: mpsc::Receiver<ApprovalNotice>) {
    while let Some(n) = rx.recv().await {
        let body = match w.format {
            WebhookFormat::Json => json_body(&n),
            WebhookFormat::Slack => slack_body(&n),
        };
        let mut delay = FIRST_RETRY;
        for attempt in 1..=ATTEMPTS {
            let sent = client.post(&w.url).json(&body).send().await;
            let why = match sent {
                Ok(r) if r.status().is_success() => break,
                Ok(r) => format!("answered {}", r.status()),
                Err(e) => e.without_url().to_string(),
            };
            if attempt == ATTEMPTS {
                tracing::error!(request = %n.request.id, event = n.event, error = %why,
                    "gave up notifying an approval webhook; the evidence log has the event");
                break;
            }
            tracing::warn!(request = %n.request.id, event = n.event, error = %why, retry_in = ?delay,
                "could not notify an approval webhook; retrying");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(30));
        }
    }
}

fn commands(r: &ApprovalRequest) -> (String, String) {
    (
        format!("gatehouse approvals approve {}", r.id),
        format!("gatehouse approvals deny {} --comment \"…\"", r.id),
    )
}

/// The generic body: the event, the whole request, and how to decide it.
pub fn json_body(n: &ApprovalNotice) -> Value {
    let (approve, deny) = commands(&n.request);
    json!({
        "event": n.event,
        "request": n.request,
        "approve_command": approve,
        "deny_command": deny,
    })
}

/// A Slack-compatible message: a summary line, the statement, who and
/// where, and the commands (for a pending request).
pub fn slack_body(n: &ApprovalNotice) -> Value {
    let r = &n.request;
    let headline = match n.event {
        "approval_requested" => format!(
            ":raised_hand: *{}* asks to run a statement on *{}* (route `{}`)",
            r.requester.subject, r.connection, r.route
        ),
        "approval_approved" if r.state == ApprovalState::Approved => format!(
            ":white_check_mark: Approved by {}: *{}* may run it once",
            voters(r, true),
            r.requester.subject
        ),
        "approval_approved" => format!(
            ":hourglass: {} approved; more approvals are needed",
            voters(r, true)
        ),
        "approval_denied" => format!(":no_entry: Denied by {}", voters(r, false)),
        _ => ":alarm_clock: Expired without a decision".to_string(),
    };
    let statement: String = r.text.chars().take(2900).collect();
    let mut blocks = vec![
        json!({"type": "section", "text": {"type": "mrkdwn", "text": headline}}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("```{statement}```")}}),
        json!({"type": "section", "fields": [
            {"type": "mrkdwn", "text": format!("*Requester*\n{} ({})", r.requester.subject, r.requester.groups.join(", "))},
            {"type": "mrkdwn", "text": format!("*Connection*\n{}", r.connection)},
            {"type": "mrkdwn", "text": format!("*Policies*\n{}", r.policies.join(", "))},
            {"type": "mrkdwn", "text": format!("*Expires*\n{}", r.expires_at)},
        ]}),
    ];
    if r.state == ApprovalState::Pending {
        let (approve, deny) = commands(r);
        blocks.push(json!({"type": "context", "elements": [
            {"type": "mrkdwn", "text": format!("Request `{}`: `{approve}` or `{deny}`", r.id)}
        ]}));
    }
    json!({
        "text": format!("{} ({}: {})", headline, r.connection, r.text.chars().take(200).collect::<String>()),
        "blocks": blocks,
    })
}

fn voters(r: &ApprovalRequest, approve: bool) -> String {
    let names: Vec<String> = r
        .votes
        .iter()
        .filter(|v| v.approve == approve)
        .map(|v| {
            if v.comment.is_empty() {
                v.approver.clone()
            } else {
                format!("{} (\"{}\")", v.approver, v.comment)
            }
        })
        .collect();
    names.join(", ")
}
