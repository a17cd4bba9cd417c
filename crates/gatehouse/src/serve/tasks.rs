//! The gateway's own background tasks: policy reloads on SIGHUP and the
//! approval expiry sweep.

use super::stopped;
use gatehouse_core::{ApprovalDesk, AuditTrail};
use std::sync::Arc;
use tokio::sync::watch;

/// Re-reads the policy files on every SIGHUP until shutdown. An invalid
/// policy is rejected and the one in force stays.
pub(super) async fn reload_on_sighup(
    policy: Arc<gatehouse_policy::PolicyHandle>,
    audit: Arc<dyn AuditTrail>,
    mut stop: watch::Receiver<bool>,
) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; reload with `gatehouse policy reload`");
            return;
        }
    };
    loop {
        tokio::select! {
            _ = hup.recv() => {
                let p = policy.clone();
                match tokio::task::spawn_blocking(move || p.reload()).await {
                    Ok(Ok(engine)) => {
                        tracing::info!(
                            generation = policy.generation(), policies = engine.policy_count(), "policy reloaded on SIGHUP"
                        );
                        let event = gatehouse_api::policy_event("reload", &policy);
                        if let Err(e) = audit.append(vec![event]).await {
                            tracing::error!(error = %e, "policy reloaded but not logged");
                        }
                    }
                    Ok(Err(problems)) => tracing::error!(
                        %problems, "policy reload on SIGHUP rejected; the previous policy stays in force"
                    ),
                    Err(e) => tracing::error!(error = %e, "policy reload task failed"),
                }
            }
            _ = stopped(&mut stop) => return,
        }
    }
}

/// How often lapsed approval requests are expired.
const EXPIRY_SWEEP: std::time::Duration = std::time::Duration::from_secs(1);

/// Expires approval requests nobody decided in time, and approvals nobody
/// used in time, until shutdown.
pub(super) async fn expire_approvals(desk: Arc<ApprovalDesk>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(EXPIRY_SWEEP);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Err(e) = desk.expire_due(gatehouse_core::Timestamp::now()).await {
                    tracing::error!(error = %e, "could not expire approval requests; retrying");
                }
            }
            _ = stopped(&mut stop) => return,
        }
    }
}
