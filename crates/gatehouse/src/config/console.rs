//! `[console]`: the web console under `/ui/` of the API listener, and who
//! besides the admin may read sessions and evidence (its auditors).

use super::parse_duration;
use gatehouse_api::{ConsoleSettings, SignInLifetime};
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ConsoleSection {
    enabled: Option<bool>,
    auditors: Option<Vec<String>>,
    session_timeout: Option<String>,
    idle_timeout: Option<String>,
}

impl ConsoleSection {
    pub(super) fn resolve(&self, problem: &mut dyn FnMut(String, String)) -> ConsoleSettings {
        let mut lifetime = SignInLifetime::default();
        let mut duration = |key: &str, text: &Option<String>, into: &mut std::time::Duration| {
            if let Some(t) = text {
                match parse_duration(t) {
                    Ok(d) => *into = d,
                    Err(r) => problem(format!("console.{key}"), r),
                }
            }
        };
        duration(
            "session_timeout",
            &self.session_timeout,
            &mut lifetime.absolute,
        );
        duration("idle_timeout", &self.idle_timeout, &mut lifetime.idle);
        let auditors = self.auditors.clone().unwrap_or_default();
        for (i, g) in auditors.iter().enumerate() {
            if g.trim().is_empty() || g.trim() != g {
                problem(
                    format!("console.auditors[{i}]"),
                    format!(
                        "{g:?} is not a group name: write the group exactly as tokens carry it"
                    ),
                );
            }
        }
        if lifetime.idle > lifetime.absolute {
            problem(
                "console.idle_timeout".into(),
                "is longer than session_timeout, so it would never apply: make it shorter".into(),
            );
        }
        ConsoleSettings {
            enabled: self.enabled.unwrap_or(true),
            auditors,
            lifetime,
        }
    }
}
