//! Where the shared store is and how to reach it, and the connection
//! options made from that. The password never appears in a message: it is
//! refused in the url, and urls are shown without one.

use gatehouse_core::StoreError;
use sqlx::postgres::{PgConnectOptions, PgSslMode};
use std::path::PathBuf;
use std::str::FromStr;

/// How to reach the shared PostgreSQL store.
#[derive(Clone)]
pub struct PgStoreSettings {
    /// `postgres://user@host:port/database`, without a password (refused
    /// there: a url ends up in logs and process listings).
    pub url: String,
    /// The user's password (from the configuration's `password_env` or
    /// `password_file`), or none for authentication without one.
    pub password: Option<String>,
    /// Whether and how the connection uses TLS (overrides any `sslmode` of
    /// the url).
    pub tls: StoreTls,
    /// The CA certificate(s) (PEM) that signed the server's certificate;
    /// the public web roots when none.
    pub ca_file: Option<PathBuf>,
    /// This node's id: its sessions are stored under it, and it is the
    /// node other nodes see heartbeating.
    pub node_id: String,
}

impl std::fmt::Debug for PgStoreSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStoreSettings")
            .field("url", &redacted(&self.url))
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("tls", &self.tls)
            .field("ca_file", &self.ca_file)
            .field("node_id", &self.node_id)
            .finish()
    }
}

/// TLS to the shared store, as libpq's `sslmode` says it. The store holds
/// session records and approvals, so anything but `VerifyFull` trusts the
/// network between the nodes and the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreTls {
    /// Plain TCP, never TLS.
    Disable,
    /// TLS if the server offers it, unverified; plain TCP otherwise.
    Prefer,
    /// TLS or no connection, but the server's certificate is not verified.
    Require,
    /// TLS with the server's certificate verified against the CA
    /// (`ca_file`, or the public web roots) and the url's host name.
    VerifyFull,
}

impl StoreTls {
    /// libpq's name for it (`disable`, `prefer`, `require`, `verify-full`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyFull => "verify-full",
        }
    }

    fn ssl_mode(self) -> PgSslMode {
        match self {
            Self::Disable => PgSslMode::Disable,
            Self::Prefer => PgSslMode::Prefer,
            Self::Require => PgSslMode::Require,
            Self::VerifyFull => PgSslMode::VerifyFull,
        }
    }
}

impl PgStoreSettings {
    /// The url as messages show it: without a password, should one be there.
    pub(crate) fn shown_url(&self) -> String {
        redacted(&self.url)
    }

    /// The connection options: the url's, with the password, TLS, CA and
    /// application name set from these settings.
    pub(crate) fn connect_options(&self) -> Result<PgConnectOptions, StoreError> {
        let shown = self.shown_url();
        let refuse = |why: String| StoreError::Unavailable(format!("the store url {shown} {why}"));
        let url =
            url::Url::parse(&self.url).map_err(|e| refuse(format!("is not a valid url: {e}")))?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err(refuse(
                "is not a PostgreSQL url (postgres://user@host:port/database)".into(),
            ));
        }
        if url.password().is_some() || url.query_pairs().any(|(k, _)| k == "password") {
            return Err(refuse(
                "carries a password: put the password in password_env or password_file, \
                 not in the url"
                    .into(),
            ));
        }
        let mut options = PgConnectOptions::from_str(&self.url)
            .map_err(|e| refuse(format!("is not a valid PostgreSQL url: {e}")))?;
        if let Some(password) = &self.password {
            options = options.password(password);
        }
        options = options.ssl_mode(self.tls.ssl_mode());
        if let Some(ca) = &self.ca_file {
            options = options.ssl_root_cert(ca);
        }
        // No statement of the gateway's takes long: one that waits (on a
        // lock, on a struggling server) fails rather than holding a login
        // or an approval up indefinitely.
        Ok(options
            .application_name("gatehouse")
            .options([("statement_timeout", "10s"), ("lock_timeout", "5s")]))
    }
}

/// `url` without the password of its user information, if any: parsed
/// when it parses, cut by hand when it does not (a url that does not parse
/// is still shown in the message saying so).
fn redacted(url: &str) -> String {
    if let Ok(mut parsed) = url::Url::parse(url) {
        if parsed.password().is_some() && parsed.set_password(Some("***")).is_ok() {
            return parsed.to_string();
        }
        let hides_password = parsed.query_pairs().any(|(k, _)| k == "password");
        if !hides_password {
            return parsed.to_string();
        }
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "password" {
                    "***".into()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
        return parsed.to_string();
    }
    // user:password@host: hide from the first ':' of the authority's user
    // information to its last '@'.
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[after_scheme..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => format!(
            "{}{}:***{}",
            &url[..after_scheme],
            &authority[..colon],
            &url[after_scheme + at..]
        ),
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str) -> PgStoreSettings {
        PgStoreSettings {
            url: url.into(),
            password: Some("s3cret-pw".into()),
            tls: StoreTls::Prefer,
            ca_file: None,
            node_id: "n1".into(),
        }
    }

    #[test]
    fn a_password_in_the_url_is_refused_and_never_shown() {
        for url in [
            "postgres://gatehouse:hunter2@db.example:5432/gatehouse",
            "postgres://gatehouse@db.example/gatehouse?password=hunter2",
        ] {
            let err = settings(url).connect_options().unwrap_err().to_string();
            assert!(err.contains("password_env or password_file"), "{err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn an_unparsable_url_is_named_without_its_password() {
        let err = settings("postgres://gatehouse:hunter2@db.example:99999999/g")
            .connect_options()
            .unwrap_err()
            .to_string();
        assert!(err.contains("gatehouse:***@db.example"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        let err = settings("mysql://gatehouse@db/g")
            .connect_options()
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a PostgreSQL url"), "{err}");
    }

    #[test]
    fn settings_override_the_url() {
        let mut s = settings("postgres://gatehouse@db.example:6543/store?sslmode=disable");
        s.tls = StoreTls::VerifyFull;
        s.ca_file = Some("/etc/gatehouse/ca.pem".into());
        let o = s.connect_options().unwrap();
        assert_eq!(o.get_host(), "db.example");
        assert_eq!(o.get_port(), 6543);
        assert_eq!(o.get_username(), "gatehouse");
        assert_eq!(o.get_database(), Some("store"));
        assert!(matches!(o.get_ssl_mode(), PgSslMode::VerifyFull));
        assert_eq!(o.get_application_name(), Some("gatehouse"));
        let shown = format!("{s:?}");
        assert!(!shown.contains("s3cret-pw"), "{shown}");
    }
}
