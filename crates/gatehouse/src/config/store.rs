//! `[store]`: where the gateway keeps tokens, sessions, approvals and its
//! node registry. Absent: the embedded SQLite store in the data directory
//! (one node). With `url`: a PostgreSQL store several nodes share.

use super::connections::read_secret;
use gatehouse_store::StoreTls;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// A node silent this long is taken for lost, by default.
const DEFAULT_LOST_AFTER: Duration = Duration::from_secs(30);
/// A node heartbeats this often.
pub const HEARTBEAT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct StoreSection {
    url: Option<String>,
    password_env: Option<String>,
    password_file: Option<String>,
    tls: Option<String>,
    ca_file: Option<String>,
    lost_after: Option<String>,
}

/// The checked `[store]`.
#[derive(Clone, Debug)]
pub enum StoreSpec {
    /// The embedded SQLite store of this node.
    Embedded,
    /// A PostgreSQL store shared by several nodes.
    Shared(SharedStore),
}

/// A shared PostgreSQL store, as configured.
#[derive(Clone)]
pub struct SharedStore {
    /// `postgres://user@host:port/database` (no password).
    pub url: String,
    /// The store password (from `password_env` or `password_file`), if any.
    pub password: Option<String>,
    /// TLS to the store.
    pub tls: StoreTls,
    /// The CA that signed the store's certificate.
    pub ca_file: Option<PathBuf>,
    /// A node silent this long has its open sessions ended by another.
    pub lost_after: Duration,
}

impl std::fmt::Debug for SharedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedStore")
            .field("url", &self.url)
            .field("password", &self.password.as_ref().map(|_| "…"))
            .field("tls", &self.tls)
            .field("ca_file", &self.ca_file)
            .field("lost_after", &self.lost_after)
            .finish()
    }
}

impl SharedStore {
    /// The store's settings for node `node_id`.
    pub fn settings(&self, node_id: &str) -> gatehouse_store::PgStoreSettings {
        gatehouse_store::PgStoreSettings {
            url: self.url.clone(),
            password: self.password.clone(),
            tls: self.tls,
            ca_file: self.ca_file.clone(),
            node_id: node_id.to_string(),
        }
    }
}

impl StoreSection {
    pub(super) fn resolve(
        &self,
        path: &impl Fn(&str) -> PathBuf,
        problem: &mut dyn FnMut(String, String),
    ) -> Option<StoreSpec> {
        let Some(url) = &self.url else {
            let stray = [
                ("password_env", self.password_env.is_some()),
                ("password_file", self.password_file.is_some()),
                ("tls", self.tls.is_some()),
                ("ca_file", self.ca_file.is_some()),
                ("lost_after", self.lost_after.is_some()),
            ];
            for (key, set) in stray {
                if set {
                    problem(
                        format!("store.{key}"),
                        "only used with a shared store: add url = \"postgres://gatehouse@host:5432/gatehouse\", or remove it".into(),
                    );
                }
            }
            return Some(StoreSpec::Embedded);
        };
        let mut ok = true;
        let mut bad = |key: &str, reason: String| {
            ok = false;
            problem(format!("store.{key}"), reason);
        };
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            bad(
                "url",
                "must be a PostgreSQL URL such as \"postgres://gatehouse@10.0.0.5:5432/gatehouse\""
                    .into(),
            );
        } else if reqwest::Url::parse(url).is_err() {
            bad(
                "url",
                "is not a URL such as \"postgres://gatehouse@10.0.0.5:5432/gatehouse\"".into(),
            );
        } else if url_has_password(url) {
            bad(
                "url",
                "holds a password: put it in password_env or password_file, never in this file"
                    .into(),
            );
        }
        let password = match (&self.password_env, &self.password_file) {
            (None, None) => None,
            _ => match read_secret(
                (&self.password_env, "password_env"),
                (&self.password_file, "password_file"),
                "the store password",
                path,
            ) {
                Ok(p) => Some(p),
                Err((key, reason)) => {
                    bad(key, reason);
                    None
                }
            },
        };
        let tls = match self.tls.as_deref().unwrap_or("verify-full") {
            "disable" => StoreTls::Disable,
            "prefer" => StoreTls::Prefer,
            "require" => StoreTls::Require,
            "verify-full" => StoreTls::VerifyFull,
            other => {
                bad(
                    "tls",
                    format!(
                        "{other:?} is not a TLS mode: use disable, prefer, require or verify-full"
                    ),
                );
                StoreTls::VerifyFull
            }
        };
        let ca_file = self.ca_file.as_deref().map(path);
        if let Some(f) = &ca_file {
            if !f.is_file() {
                bad("ca_file", format!("{} does not exist", f.display()));
            }
            if tls == StoreTls::Disable {
                bad(
                    "ca_file",
                    "tls = \"disable\" uses no CA: remove ca_file or enable TLS".into(),
                );
            }
        }
        let lost_after = match &self.lost_after {
            None => DEFAULT_LOST_AFTER,
            Some(s) => match super::parse_duration(s) {
                Ok(d) if d >= HEARTBEAT * 3 => d,
                Ok(_) => {
                    bad(
                        "lost_after",
                        format!(
                            "must be at least {}s (three heartbeats)",
                            (HEARTBEAT * 3).as_secs()
                        ),
                    );
                    DEFAULT_LOST_AFTER
                }
                Err(r) => {
                    bad("lost_after", r);
                    DEFAULT_LOST_AFTER
                }
            },
        };
        ok.then(|| {
            StoreSpec::Shared(SharedStore {
                url: url.clone(),
                password,
                tls,
                ca_file,
                lost_after,
            })
        })
    }
}

/// Whether a `postgres://` URL carries a password: `user:password@`, or
/// a `password` (or `sslpassword`) parameter. An unparsable URL counts as
/// carrying one, so it is never printed.
fn url_has_password(url: &str) -> bool {
    match reqwest::Url::parse(url) {
        Ok(u) => {
            u.password().is_some()
                || u.query_pairs()
                    .any(|(k, _)| k.to_ascii_lowercase().contains("password"))
        }
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_urls_are_found() {
        assert!(url_has_password("postgres://gh:secret@db:5432/gh"));
        assert!(!url_has_password("postgres://gh@db:5432/gh"));
        assert!(!url_has_password("postgres://db:5432/gh"));
        assert!(!url_has_password("postgres://gh@db/gh?options=a:b@c"));
        assert!(url_has_password("postgres://gh@db/gh?password=hunter2"));
        assert!(url_has_password(
            "postgres://gh@db/gh?sslmode=require&sslpassword=x"
        ));
        assert!(url_has_password("postgres://gh@[db/gh"));
    }
}
