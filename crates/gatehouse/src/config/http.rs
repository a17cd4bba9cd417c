//! `[[connection]] kind = "http"`: an upstream REST API, the gateway's own
//! credential for it, and its TLS.

use super::connections::{read_secret, ConnectionSection};
use super::parse_duration;
use gatehouse_http::{HttpTarget, Secret, UpstreamAuth};
use std::path::PathBuf;
use std::time::Duration;

/// Bytes of a request and of a response body kept (masked) in the record,
/// unless `record_body_size` says otherwise.
const RECORD_BODY_LIMIT: u64 = 4096;
/// The most `record_body_size` may be.
const RECORD_BODY_MAX: u64 = 1 << 20;
/// Bytes one exec or attach recording keeps, unless `recording_limit` says
/// otherwise; and the most it may say.
const RECORDING_LIMIT: u64 = 64 << 20;
const RECORDING_MAX: u64 = 1 << 30;

impl ConnectionSection {
    /// Checks a `kind = "http"` connection, reads its credential and TLS
    /// material and builds its client.
    pub(super) fn resolve_http(
        &self,
        i: usize,
        path: &impl Fn(&str) -> PathBuf,
        problem: &mut dyn FnMut(String, String),
    ) -> Option<HttpTarget> {
        let k = |field: &str| format!("connection[{i}].{field}");
        let mut ok = true;
        let mut bad = |key: String, reason: String| {
            ok = false;
            problem(key, reason);
        };
        for (key, set) in [
            ("host", self.host.is_some()),
            ("port", self.port.is_some()),
            ("database", self.database.is_some()),
            ("backend_tls", self.backend_tls.is_some()),
        ] {
            if set {
                bad(
                    k(key),
                    "not used by http connections: the upstream is named by url (https:// for TLS)"
                        .into(),
                );
            }
        }
        let url = match self.url.as_deref().map(url::Url::parse) {
            None => {
                bad(
                    k("url"),
                    "missing: the upstream's base URL, e.g. \"https://billing.internal:8443\""
                        .into(),
                );
                None
            }
            Some(Err(e)) => {
                bad(k("url"), format!("not a URL: {e}"));
                None
            }
            Some(Ok(u)) if !matches!(u.scheme(), "http" | "https") || u.host().is_none() => {
                bad(
                    k("url"),
                    "use an http:// or https:// URL with a host".into(),
                );
                None
            }
            Some(Ok(u))
                if u.query().is_some() || u.fragment().is_some() || !u.username().is_empty() =>
            {
                bad(k("url"), "the base URL takes no query, fragment or credentials (set auth and token_env instead)".into());
                None
            }
            Some(Ok(u)) => Some(u),
        };
        if url.as_ref().is_some_and(|u| u.scheme() == "http") && self.backend_ca.is_some() {
            bad(k("backend_ca"), "only used with an https:// url".into());
        }
        let kube = self.kind == "kubernetes";
        if !kube && self.impersonate.is_some() {
            bad(
                k("impersonate"),
                "only used by kubernetes connections".into(),
            );
        }
        let recording_limit = match (kube, self.recording_limit.as_ref().map(|s| s.bytes())) {
            (false, Some(_)) => {
                bad(
                    k("recording_limit"),
                    "only used by kubernetes connections (exec and attach recordings)".into(),
                );
                0
            }
            (_, None) => RECORDING_LIMIT,
            (true, Some(Ok(n))) if (1 << 20..=RECORDING_MAX).contains(&n) => n,
            (true, Some(Ok(_))) => {
                bad(
                    k("recording_limit"),
                    "between 1MiB and 1GiB: a recording is held in memory until its stream ends"
                        .into(),
                );
                0
            }
            (true, Some(Err(e))) => {
                bad(k("recording_limit"), e);
                0
            }
        };
        let auth = if kube {
            self.kube_auth(i, path, &mut bad)
        } else {
            self.upstream_auth(i, path, &mut bad)
        };
        let mut hosts = Vec::new();
        for (j, h) in self.hosts.iter().enumerate() {
            let valid = !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'));
            if valid {
                hosts.push(h.to_ascii_lowercase());
            } else {
                bad(
                    format!("connection[{i}].hosts[{j}]"),
                    format!("{h:?} is not a host name (letters, digits, dots and dashes; no port)"),
                );
            }
        }
        let connect_timeout = match &self.connect_timeout {
            Some(t) => parse_duration(t).unwrap_or_else(|r| {
                bad(k("connect_timeout"), r);
                Duration::ZERO
            }),
            None => Duration::from_secs(10),
        };
        let read = |key: &str, f: &Option<String>, bad: &mut dyn FnMut(String, String)| {
            let f = f.as_ref()?;
            let p = path(f);
            std::fs::read(&p)
                .map_err(|e| bad(k(key), format!("cannot read {}: {e}", p.display())))
                .ok()
        };
        let ca = read("backend_ca", &self.backend_ca, &mut bad);
        let identity = match (
            read("client_cert", &self.client_cert, &mut bad),
            read("client_key", &self.client_key, &mut bad),
        ) {
            (Some(mut cert), Some(key)) => {
                cert.push(b'\n');
                cert.extend_from_slice(&key);
                Some(cert)
            }
            (None, None) => None,
            _ => {
                bad(
                    k("client_cert"),
                    "set both client_cert and client_key for a client certificate".into(),
                );
                None
            }
        };
        let client = match gatehouse_http::upstream_client(
            ca.as_deref(),
            identity.as_deref(),
            connect_timeout,
        ) {
            Ok(c) => Some(c),
            Err(e) => {
                let key = if identity.is_some() {
                    "client_cert"
                } else {
                    "backend_ca"
                };
                bad(k(key), e.to_string());
                None
            }
        };
        let record_body_limit = match self.record_body_size.as_ref().map(|s| s.bytes()) {
            None => RECORD_BODY_LIMIT,
            Some(Ok(n)) if n <= RECORD_BODY_MAX => n,
            Some(Ok(_)) => {
                bad(
                    k("record_body_size"),
                    "at most 1MiB: records are kept for every request".into(),
                );
                0
            }
            Some(Err(e)) => {
                bad(k("record_body_size"), e);
                0
            }
        };
        if !ok {
            return None;
        }
        Some(HttpTarget {
            name: self.name.clone(),
            dialect: match self.kind.as_str() {
                "mcp" => gatehouse_http::Dialect::Mcp,
                "kubernetes" => gatehouse_http::Dialect::Kubernetes,
                _ => gatehouse_http::Dialect::Rest,
            },
            url: url?,
            hosts,
            auth: auth?,
            client: client?,
            masking: None,
            record_body_limit: record_body_limit as usize,
            impersonate: self.impersonate.unwrap_or(false),
            recording_limit: recording_limit as usize,
        })
    }

    /// A kubernetes connection's `auth`: `bearer` (token_env or token_file)
    /// or `client_cert` (client_cert and client_key, read with the TLS
    /// material); the API server always wants a credential.
    fn kube_auth(
        &self,
        i: usize,
        path: &impl Fn(&str) -> PathBuf,
        bad: &mut dyn FnMut(String, String),
    ) -> Option<UpstreamAuth> {
        let k = |field: &str| format!("connection[{i}].{field}");
        for (key, set) in [
            ("user", self.user.is_some()),
            ("password_env", self.password_env.is_some()),
            ("password_file", self.password_file.is_some()),
            ("header_name", self.header_name.is_some()),
        ] {
            if set {
                bad(
                    k(key),
                    "not used by kubernetes connections (auth is bearer or client_cert)".into(),
                );
            }
        }
        match self.auth.as_deref() {
            Some("bearer") => self.upstream_auth(i, path, bad),
            Some("client_cert") => {
                for (key, set) in [
                    ("token_env", self.token_env.is_some()),
                    ("token_file", self.token_file.is_some()),
                ] {
                    if set {
                        bad(k(key), "not used with auth = \"client_cert\"".into());
                    }
                }
                if self.client_cert.is_none() || self.client_key.is_none() {
                    bad(
                        k("client_cert"),
                        "auth = \"client_cert\" needs client_cert and client_key (PEM files)"
                            .into(),
                    );
                    return None;
                }
                Some(UpstreamAuth::None)
            }
            Some(other) => {
                bad(
                    k("auth"),
                    format!("{other:?} is not a kubernetes credential: use bearer (token_file or token_env) or client_cert"),
                );
                None
            }
            None => {
                bad(
                    k("auth"),
                    "missing: the gateway's own credential for the API server, bearer (token_file or token_env) or client_cert".into(),
                );
                None
            }
        }
    }

    /// `auth` with its credential: `bearer` and `header` read token_env or
    /// token_file; `basic` reads user and password_env or password_file.
    fn upstream_auth(
        &self,
        i: usize,
        path: &impl Fn(&str) -> PathBuf,
        bad: &mut dyn FnMut(String, String),
    ) -> Option<UpstreamAuth> {
        let k = |field: &str| format!("connection[{i}].{field}");
        let token = |bad: &mut dyn FnMut(String, String)| match read_secret(
            (&self.token_env, "token_env"),
            (&self.token_file, "token_file"),
            "the upstream's token",
            path,
        ) {
            Ok(t) if t.len() < 8 => {
                bad(k("token_env"), "the upstream token is shorter than 8 characters; the gateway masks it in responses and cannot do that for so short a value".into());
                None
            }
            Ok(t) => Some(Secret::new(t)),
            Err((key, reason)) => {
                bad(k(key), reason);
                None
            }
        };
        let unused = |keys: &[(&str, bool)], bad: &mut dyn FnMut(String, String), auth: &str| {
            for (key, set) in keys {
                if *set {
                    bad(k(key), format!("not used with auth = {auth:?}"));
                }
            }
        };
        let auth = self.auth.as_deref().unwrap_or("none");
        let token_keys = [
            ("token_env", self.token_env.is_some()),
            ("token_file", self.token_file.is_some()),
        ];
        let basic_keys = [
            ("user", self.user.is_some()),
            ("password_env", self.password_env.is_some()),
            ("password_file", self.password_file.is_some()),
        ];
        let header_key = [("header_name", self.header_name.is_some())];
        match auth {
            "none" => {
                unused(&token_keys, bad, auth);
                unused(&basic_keys, bad, auth);
                unused(&header_key, bad, auth);
                Some(UpstreamAuth::None)
            }
            "bearer" => {
                unused(&basic_keys, bad, auth);
                unused(&header_key, bad, auth);
                token(bad).map(UpstreamAuth::Bearer)
            }
            "header" => {
                unused(&basic_keys, bad, auth);
                let name = match self.header_name.as_deref().map(http::HeaderName::try_from) {
                    Some(Ok(n)) if n != http::header::AUTHORIZATION => Some(n),
                    Some(Ok(_)) => {
                        bad(
                            k("header_name"),
                            "for Authorization use auth = \"bearer\" or \"basic\"".into(),
                        );
                        None
                    }
                    Some(Err(_)) => {
                        bad(k("header_name"), "not a valid header name".into());
                        None
                    }
                    None => {
                        bad(
                            k("header_name"),
                            "missing: the header that carries the key, e.g. \"X-API-Key\"".into(),
                        );
                        None
                    }
                };
                let value = token(bad);
                Some(UpstreamAuth::Header {
                    name: name?,
                    value: value?,
                })
            }
            "basic" => {
                unused(&token_keys, bad, auth);
                unused(&header_key, bad, auth);
                let user = match self.user.as_deref() {
                    Some(u) if !u.is_empty() && !u.contains(':') => Some(u.to_string()),
                    _ => {
                        bad(
                            k("user"),
                            "missing or invalid: the upstream user name (no colon)".into(),
                        );
                        None
                    }
                };
                let password = match read_secret(
                    (&self.password_env, "password_env"),
                    (&self.password_file, "password_file"),
                    "the upstream password",
                    path,
                ) {
                    Ok(p) if p.len() < 8 => {
                        bad(k("password_env"), "the upstream password is shorter than 8 characters; the gateway masks it in responses and cannot do that for so short a value".into());
                        None
                    }
                    Ok(p) => Some(Secret::new(p)),
                    Err((key, reason)) => {
                        bad(k(key), reason);
                        None
                    }
                };
                Some(UpstreamAuth::Basic {
                    user: user?,
                    password: password?,
                })
            }
            other => {
                bad(
                    k("auth"),
                    format!("{other:?} is not an upstream authentication: use bearer, header, basic or none"),
                );
                None
            }
        }
    }
}
