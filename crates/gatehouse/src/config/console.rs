//! `[console]`: the web console under `/ui/` of the API listener, and who
//! besides the admin may read sessions and evidence (its auditors).

use super::connections::read_secret;
use super::parse_duration;
use gatehouse_api::{ConsoleSettings, SignInLifetime};
use gatehouse_identity::oidc::{CodeFlow, IssuerSettings};
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ConsoleSection {
    enabled: Option<bool>,
    auditors: Option<Vec<String>>,
    session_timeout: Option<String>,
    idle_timeout: Option<String>,
    oidc: Option<OidcSignInSection>,
}

/// `[console.oidc]`: people sign in with the organisation's provider.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct OidcSignInSection {
    /// The `[[identity.oidc]]` issuer whose ID tokens identify people.
    issuer: String,
    client_id: Option<String>,
    client_secret_env: Option<String>,
    client_secret_file: Option<String>,
    redirect_url: String,
    scopes: Option<Vec<String>>,
}

impl ConsoleSection {
    /// Checks the section; `issuers` are the `[[identity.oidc]]` ones
    /// (None when they have problems of their own).
    pub(super) fn resolve(
        &self,
        issuers: Option<&[IssuerSettings]>,
        path: &impl Fn(&str) -> PathBuf,
        problem: &mut dyn FnMut(String, String),
    ) -> ConsoleSettings {
        let oidc = self
            .oidc
            .as_ref()
            .and_then(|o| o.resolve(issuers, path, problem));
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
            oidc,
        }
    }
}

impl OidcSignInSection {
    fn resolve(
        &self,
        issuers: Option<&[IssuerSettings]>,
        path: &impl Fn(&str) -> PathBuf,
        problem: &mut dyn FnMut(String, String),
    ) -> Option<Arc<CodeFlow>> {
        let issuers = issuers?;
        let Some(issuer) = issuers.iter().find(|i| i.name == self.issuer) else {
            let names: Vec<&str> = issuers.iter().map(|i| i.name.as_str()).collect();
            problem(
                "console.oidc.issuer".into(),
                format!(
                    "no [[identity.oidc]] is named {:?} (configured: {}): add the provider people sign in with as an issuer whose audience is the console's client id",
                    self.issuer,
                    if names.is_empty() { "none".to_string() } else { names.join(", ") }
                ),
            );
            return None;
        };
        // The ID token names the client as its audience: the issuer must
        // accept it, or no sign-in could ever be checked.
        let client_id = self
            .client_id
            .clone()
            .or_else(|| issuer.audiences.first().cloned())?;
        if !issuer.audiences.contains(&client_id) {
            problem(
                "console.oidc.client_id".into(),
                format!(
                    "{client_id:?} is not an audience of issuer {:?} ({}): ID tokens name the client as their audience, so add it to that issuer's audience",
                    issuer.name,
                    issuer.audiences.join(", ")
                ),
            );
            return None;
        }
        let secret = match (&self.client_secret_env, &self.client_secret_file) {
            (None, None) => None,
            _ => match read_secret(
                (&self.client_secret_env, "console.oidc.client_secret_env"),
                (&self.client_secret_file, "console.oidc.client_secret_file"),
                "the console's OIDC client secret",
                path,
            ) {
                Ok(s) => Some(s),
                Err((key, reason)) => {
                    problem(key.into(), reason);
                    return None;
                }
            },
        };
        let loopback = |u: &url::Url| match u.host() {
            Some(url::Host::Domain(d)) => d == "localhost",
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        match url::Url::parse(&self.redirect_url) {
            Ok(u) if u.path() == "/ui/api/oidc/callback" && u.scheme() == "https" => {}
            Ok(u)
                if u.path() == "/ui/api/oidc/callback" && u.scheme() == "http" && loopback(&u) => {}
            Ok(u) if u.path() == "/ui/api/oidc/callback" && u.scheme() == "http" => {
                problem(
                    "console.oidc.redirect_url".into(),
                    format!(
                        "{:?} is plain http on a host other than loopback, where browsers keep no sign-in cookie: serve the console over https (a TLS reverse proxy) and name that address",
                        self.redirect_url
                    ),
                );
                return None;
            }
            _ => {
                problem(
                    "console.oidc.redirect_url".into(),
                    format!(
                        "{:?} must be this gateway's console address ending in /ui/api/oidc/callback, e.g. \"https://gatehouse.example.com/ui/api/oidc/callback\" (register the same with the provider)",
                        self.redirect_url
                    ),
                );
                return None;
            }
        }
        let scopes = self
            .scopes
            .clone()
            .unwrap_or_else(|| vec!["openid".into(), "profile".into(), "email".into()]);
        if !scopes.iter().any(|s| s == "openid") {
            problem(
                "console.oidc.scopes".into(),
                "must include \"openid\" (without it the provider sends no ID token)".into(),
            );
            return None;
        }
        match CodeFlow::new(
            issuer.clone(),
            client_id,
            secret,
            self.redirect_url.clone(),
            scopes,
        ) {
            Ok(flow) => Some(Arc::new(flow)),
            Err(e) => {
                problem("console.oidc.issuer".into(), e);
                None
            }
        }
    }
}
