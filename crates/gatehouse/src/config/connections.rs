//! `[[connection]]`: the backends callers reach, checked one by one, with
//! their passwords and CA certificates read.

use super::parse_duration;
use gatehouse_postgres::{BackendPassword, BackendTarget, BackendTls};
use serde::Deserialize;
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum BackendTlsMode {
    Disable,
    Prefer,
    Require,
    VerifyFull,
}

/// One `[[connection]]` table as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ConnectionSection {
    pub(super) name: String,
    kind: String,
    host: String,
    #[serde(default = "default_pg_port")]
    port: u16,
    database: String,
    user: String,
    password_env: Option<String>,
    password_file: Option<String>,
    #[serde(default = "default_backend_tls")]
    backend_tls: BackendTlsMode,
    backend_ca: Option<String>,
    connect_timeout: Option<String>,
    pub(super) masking: Option<super::masking::ConnectionMaskingSection>,
}

fn default_pg_port() -> u16 {
    5432
}

fn default_backend_tls() -> BackendTlsMode {
    BackendTlsMode::Prefer
}

impl ConnectionSection {
    /// Checks `[[connection]]` number `i` (its name against the `names`
    /// taken before it) and reads its password and CA. Every problem goes to
    /// `problem`; `None` when there was any. Its masking is checked by the
    /// caller, which knows the global masking settings.
    pub(super) fn resolve(
        &self,
        i: usize,
        names: &mut HashSet<String>,
        path: impl Fn(&str) -> PathBuf,
        problem: &mut impl FnMut(String, String),
    ) -> Option<BackendTarget> {
        let k = |field: &str| format!("connection[{i}].{field}");
        let mut ok = true;
        let mut bad = |key: String, reason: String, ok: &mut bool| {
            *ok = false;
            problem(key, reason);
        };
        if gatehouse_identity::validate_name("connection name", &self.name).is_err() {
            bad(
                k("name"),
                format!(
                    "{:?} is not a valid connection name: use letters, digits and . _ - @ :",
                    self.name
                ),
                &mut ok,
            );
        } else if !names.insert(self.name.clone()) {
            bad(
                k("name"),
                format!(
                    "{:?} is used by another connection; names must be unique",
                    self.name
                ),
                &mut ok,
            );
        }
        if self.kind != "postgres" {
            bad(
                k("kind"),
                format!(
                    "{:?} is not supported; the supported kind is \"postgres\"",
                    self.kind
                ),
                &mut ok,
            );
        }
        if self.host.trim().is_empty() {
            bad(k("host"), "must not be empty".into(), &mut ok);
        }
        if self.port == 0 {
            bad(k("port"), "must be between 1 and 65535".into(), &mut ok);
        }
        if self.database.is_empty() {
            bad(k("database"), "must not be empty".into(), &mut ok);
        }
        if self.user.is_empty() {
            bad(k("user"), "must not be empty".into(), &mut ok);
        }
        let password = match (&self.password_env, &self.password_file) {
            (Some(_), Some(_)) => {
                bad(
                    k("password_env"),
                    "set either password_env or password_file, not both".into(),
                    &mut ok,
                );
                None
            }
            (None, None) => {
                bad(k("password_env"), "missing: name the environment variable (password_env) or file (password_file) holding the backend password; passwords are never written in this file".into(), &mut ok);
                None
            }
            (Some(var), None) => match std::env::var(var) {
                Ok(v) if !v.is_empty() => Some(v),
                Ok(_) => {
                    bad(
                        k("password_env"),
                        format!("environment variable {var} is empty"),
                        &mut ok,
                    );
                    None
                }
                Err(_) => {
                    bad(
                        k("password_env"),
                        format!("environment variable {var} is not set"),
                        &mut ok,
                    );
                    None
                }
            },
            (None, Some(f)) => {
                let path = path(f);
                match std::fs::read_to_string(&path) {
                    Ok(v) => {
                        let v = v.trim_end_matches(['\n', '\r']).to_string();
                        if v.is_empty() {
                            bad(
                                k("password_file"),
                                format!("{} is empty", path.display()),
                                &mut ok,
                            );
                            None
                        } else {
                            Some(v)
                        }
                    }
                    Err(e) => {
                        bad(
                            k("password_file"),
                            format!("cannot read {}: {e}", path.display()),
                            &mut ok,
                        );
                        None
                    }
                }
            }
        };
        let connect_timeout = match &self.connect_timeout {
            Some(t) => match parse_duration(t) {
                Ok(d) => d,
                Err(r) => {
                    bad(k("connect_timeout"), r, &mut ok);
                    Duration::ZERO
                }
            },
            None => Duration::from_secs(10),
        };
        let backend_tls = match (self.backend_tls, &self.backend_ca) {
            (BackendTlsMode::VerifyFull, None) => {
                bad(k("backend_ca"), "backend_tls = \"verify-full\" needs backend_ca: the PEM file of the CA that signed the server's certificate".into(), &mut ok);
                None
            }
            (BackendTlsMode::VerifyFull, Some(ca)) => {
                let path = path(ca);
                match std::fs::read(&path) {
                    Ok(pem) => match gatehouse_postgres::client_config_verified(&pem) {
                        Ok(cfg) => Some(BackendTls::VerifyFull(cfg)),
                        Err(e) => {
                            bad(k("backend_ca"), format!("{}: {e}", path.display()), &mut ok);
                            None
                        }
                    },
                    Err(e) => {
                        bad(
                            k("backend_ca"),
                            format!("cannot read {}: {e}", path.display()),
                            &mut ok,
                        );
                        None
                    }
                }
            }
            (_, Some(_)) => {
                bad(
                    k("backend_ca"),
                    "only used with backend_tls = \"verify-full\"; remove it or use verify-full"
                        .into(),
                    &mut ok,
                );
                None
            }
            (BackendTlsMode::Disable, None) => Some(BackendTls::Disable),
            (mode, None) => match gatehouse_postgres::client_config_unverified() {
                Ok(cfg) if mode == BackendTlsMode::Prefer => Some(BackendTls::Prefer(cfg)),
                Ok(cfg) => Some(BackendTls::Require(cfg)),
                Err(e) => {
                    bad(k("backend_tls"), e.to_string(), &mut ok);
                    None
                }
            },
        };
        if !ok {
            return None;
        }
        Some(BackendTarget {
            name: self.name.clone(),
            host: self.host.clone(),
            port: self.port,
            database: self.database.clone(),
            user: self.user.clone(),
            password: BackendPassword::new(password?),
            tls: backend_tls?,
            connect_timeout,
        })
    }
}
