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
pub(super) enum BackendTlsMode {
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
    pub(super) kind: String,
    pub(super) host: Option<String>,
    pub(super) port: Option<u16>,
    pub(super) database: Option<String>,
    pub(super) user: Option<String>,
    pub(super) password_env: Option<String>,
    pub(super) password_file: Option<String>,
    pub(super) backend_tls: Option<BackendTlsMode>,
    pub(super) backend_ca: Option<String>,
    pub(super) connect_timeout: Option<String>,
    pub(super) masking: Option<super::masking::ConnectionMaskingSection>,
    // http and mcp connections (config/http.rs).
    pub(super) url: Option<String>,
    pub(super) auth: Option<String>,
    pub(super) token_env: Option<String>,
    pub(super) token_file: Option<String>,
    pub(super) header_name: Option<String>,
    #[serde(default)]
    pub(super) hosts: Vec<String>,
    pub(super) client_cert: Option<String>,
    pub(super) client_key: Option<String>,
    pub(super) record_body_size: Option<super::limits::Size>,
    // kubernetes connections.
    pub(super) impersonate: Option<bool>,
    pub(super) recording_limit: Option<super::limits::Size>,
    // ssh connections (config/ssh.rs).
    #[serde(default)]
    pub(super) users: Vec<String>,
    pub(super) private_key_file: Option<String>,
    pub(super) host_key: Option<String>,
    pub(super) host_key_file: Option<String>,
    // mysql connections.
    pub(super) backend_public_key_file: Option<String>,
}

/// A checked `[[connection]]`.
pub(super) enum Resolved {
    Postgres(BackendTarget),
    Http(gatehouse_http::HttpTarget),
    Ssh(gatehouse_ssh::SshTarget),
    Mysql(gatehouse_mysql::MysqlTarget),
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
    ) -> Option<Resolved> {
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
        if self.kind != "mysql" && self.backend_public_key_file.is_some() {
            bad(
                k("backend_public_key_file"),
                "only used by mysql connections".into(),
                &mut ok,
            );
        }
        if self.kind != "ssh" {
            for (key, set) in [
                ("users", !self.users.is_empty()),
                ("private_key_file", self.private_key_file.is_some()),
                ("host_key", self.host_key.is_some()),
                ("host_key_file", self.host_key_file.is_some()),
            ] {
                if set {
                    bad(k(key), "only used by ssh connections".into(), &mut ok);
                }
            }
        }
        let target = match self.kind.as_str() {
            "ssh" => self
                .resolve_ssh(i, &path, &mut |key, reason| bad(key, reason, &mut ok))
                .map(Resolved::Ssh),
            "postgres" => self
                .resolve_postgres(i, &path, 5432, &mut |key, reason| bad(key, reason, &mut ok))
                .map(Resolved::Postgres),
            "mysql" => {
                let key =
                    self.server_public_key(i, &path, &mut |key, reason| bad(key, reason, &mut ok));
                self.resolve_postgres(i, &path, 3306, &mut |key, reason| bad(key, reason, &mut ok))
                    .map(|t| Resolved::Mysql(mysql_target(t, key)))
            }
            "http" | "mcp" | "kubernetes" => self
                .resolve_http(i, &path, &mut |key, reason| bad(key, reason, &mut ok))
                .map(Resolved::Http),
            other => {
                bad(
                    k("kind"),
                    format!("{other:?} is not supported; the supported kinds are \"postgres\", \"mysql\", \"http\", \"mcp\", \"kubernetes\" and \"ssh\""),
                    &mut ok,
                );
                // A database-shaped section still gets its other mistakes named.
                if self.url.is_none() {
                    self.resolve_postgres(i, &path, 5432, &mut |key, reason| {
                        bad(key, reason, &mut ok)
                    });
                }
                None
            }
        };
        if ok {
            target
        } else {
            None
        }
    }

    /// Reads a mysql connection's `backend_public_key_file`, when set.
    fn server_public_key(
        &self,
        i: usize,
        path: &impl Fn(&str) -> PathBuf,
        problem: &mut dyn FnMut(String, String),
    ) -> Option<gatehouse_mysql::ServerPublicKey> {
        let file = self.backend_public_key_file.as_ref()?;
        let key = format!("connection[{i}].backend_public_key_file");
        let path = path(file);
        match std::fs::read_to_string(&path) {
            Ok(pem) => match gatehouse_mysql::ServerPublicKey::from_pem(&pem) {
                Ok(k) => Some(k),
                Err(e) => {
                    problem(key, format!("{}: {e}", path.display()));
                    None
                }
            },
            Err(e) => {
                problem(key, format!("cannot read {}: {e}", path.display()));
                None
            }
        }
    }

    /// Checks a `kind = "postgres"` (or `"mysql"`: the same keys, another
    /// default port) connection and reads its password and CA.
    fn resolve_postgres(
        &self,
        i: usize,
        path: &impl Fn(&str) -> PathBuf,
        default_port: u16,
        problem: &mut dyn FnMut(String, String),
    ) -> Option<BackendTarget> {
        let k = |field: &str| format!("connection[{i}].{field}");
        let mut ok = true;
        let mut bad = |key: String, reason: String, ok: &mut bool| {
            *ok = false;
            problem(key, reason);
        };
        for (key, set) in [
            ("url", self.url.is_some()),
            ("auth", self.auth.is_some()),
            ("token_env", self.token_env.is_some()),
            ("token_file", self.token_file.is_some()),
            ("header_name", self.header_name.is_some()),
            ("hosts", !self.hosts.is_empty()),
            ("client_cert", self.client_cert.is_some()),
            ("client_key", self.client_key.is_some()),
            ("record_body_size", self.record_body_size.is_some()),
            ("impersonate", self.impersonate.is_some()),
            ("recording_limit", self.recording_limit.is_some()),
        ] {
            if set {
                bad(k(key), "only used by http connections".into(), &mut ok);
            }
        }
        let mut required =
            |v: &Option<String>, key: &str, ok: &mut bool| match v.as_deref().map(str::trim) {
                Some(s) if !s.is_empty() => s.to_string(),
                Some(_) => {
                    bad(k(key), "must not be empty".into(), ok);
                    String::new()
                }
                None => {
                    bad(k(key), "missing".into(), ok);
                    String::new()
                }
            };
        let host = required(&self.host, "host", &mut ok);
        let database = required(&self.database, "database", &mut ok);
        let user = required(&self.user, "user", &mut ok);
        let port = self.port.unwrap_or(default_port);
        if port == 0 {
            bad(k("port"), "must be between 1 and 65535".into(), &mut ok);
        }
        let password = match read_secret(
            (&self.password_env, "password_env"),
            (&self.password_file, "password_file"),
            "the backend password",
            path,
        ) {
            Ok(p) => Some(p),
            Err((key, reason)) => {
                bad(k(key), reason, &mut ok);
                None
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
        let backend_tls = match (
            self.backend_tls.unwrap_or(BackendTlsMode::Prefer),
            &self.backend_ca,
        ) {
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
            host,
            port,
            database,
            user,
            password: BackendPassword::new(password?),
            tls: backend_tls?,
            connect_timeout,
        })
    }
}

/// A checked database connection as the MySQL adapter takes it (masking
/// is attached at start).
fn mysql_target(
    t: BackendTarget,
    server_key: Option<gatehouse_mysql::ServerPublicKey>,
) -> gatehouse_mysql::MysqlTarget {
    gatehouse_mysql::MysqlTarget {
        name: t.name,
        host: t.host,
        port: t.port,
        database: t.database,
        user: t.user,
        password: t.password,
        tls: t.tls,
        connect_timeout: t.connect_timeout,
        server_key,
        masking: None,
        exempt_groups: Vec::new(),
    }
}

/// Reads a secret named by an environment variable or a file (never
/// written in the configuration itself). `Err` names the key and why.
pub(super) fn read_secret(
    (env, env_key): (&Option<String>, &'static str),
    (file, file_key): (&Option<String>, &'static str),
    what: &str,
    path: &impl Fn(&str) -> PathBuf,
) -> Result<String, (&'static str, String)> {
    match (env, file) {
        (Some(_), Some(_)) => Err((
            env_key,
            format!("set either {env_key} or {file_key}, not both"),
        )),
        (None, None) => Err((
            env_key,
            format!("missing: name the environment variable ({env_key}) or file ({file_key}) holding {what}; secrets are never written in this file"),
        )),
        (Some(var), None) => match std::env::var(var) {
            Ok(v) if !v.is_empty() => Ok(v),
            Ok(_) => Err((env_key, format!("environment variable {var} is empty"))),
            Err(_) => Err((env_key, format!("environment variable {var} is not set"))),
        },
        (None, Some(f)) => {
            let path = path(f);
            match std::fs::read_to_string(&path) {
                Ok(v) => {
                    let v = v.trim_end_matches(['\n', '\r']).to_string();
                    if v.is_empty() {
                        Err((file_key, format!("{} is empty", path.display())))
                    } else {
                        Ok(v)
                    }
                }
                Err(e) => Err((file_key, format!("cannot read {}: {e}", path.display()))),
            }
        }
    }
}
