//! The upstream leg: an HTTP client per connection, the request the
//! gateway sends (its own credential, never the caller's), and the headers
//! that may cross in each direction.

use crate::{HttpTarget, UpstreamAuth};
use http::{header, HeaderMap, HeaderName, HeaderValue};
use std::time::Duration;

/// The upstream client could not be built from the configuration.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamClientError {
    /// The CA or client certificate is unusable.
    #[error("{0}")]
    Tls(String),
}

/// Builds a connection's client: redirects are never followed (they go
/// back to the caller), no proxy from the environment, and only the given
/// CA when one is configured.
pub fn client(
    ca_pem: Option<&[u8]>,
    client_identity_pem: Option<&[u8]>,
    connect_timeout: Duration,
) -> Result<reqwest::Client, UpstreamClientError> {
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(connect_timeout)
        .pool_idle_timeout(Duration::from_secs(60))
        // An upstream silent this long mid-answer is given up (504 before
        // the head, a cut body after); event streams send more often.
        .read_timeout(Duration::from_secs(300))
        .http1_only();
    if let Some(pem) = ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| UpstreamClientError::Tls(format!("the CA file is not PEM: {e}")))?;
        if certs.is_empty() {
            return Err(UpstreamClientError::Tls(
                "the CA file holds no certificate".into(),
            ));
        }
        b = b.tls_built_in_root_certs(false);
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    if let Some(pem) = client_identity_pem {
        let id = reqwest::Identity::from_pem(pem).map_err(|e| {
            UpstreamClientError::Tls(format!(
                "the client certificate and key are not usable PEM: {e}"
            ))
        })?;
        b = b.identity(id);
    }
    b.build()
        .map_err(|e| UpstreamClientError::Tls(format!("cannot build the HTTP client: {e}")))
}

/// Headers that belong to one hop (RFC 9110 §7.6.1), never forwarded.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Removes hop-by-hop headers, including those the Connection header names.
fn strip_hop_by_hop(h: &mut HeaderMap) {
    let named: Vec<HeaderName> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in named {
        h.remove(n);
    }
    for n in HOP_BY_HOP {
        h.remove(*n);
    }
}

/// The only caller headers an MCP server is sent: what the protocol uses.
/// Others (a tenant header, `Last-Event-ID`, which would replay a stream the
/// gateway filtered once) are not decided, so they are not forwarded.
const MCP_HEADERS: &[&str] = &[
    "accept",
    "content-type",
    "mcp-session-id",
    "mcp-protocol-version",
    "mcp-method",
    "mcp-name",
    "user-agent",
];

/// Keeps only the headers an MCP server is sent.
pub(crate) fn mcp_only(h: &mut HeaderMap) {
    let drop: Vec<HeaderName> = h
        .keys()
        .filter(|n| !MCP_HEADERS.contains(&n.as_str()) && !n.as_str().starts_with("mcp-param-"))
        .filter(|n| *n != header::ACCEPT_ENCODING)
        .cloned()
        .collect();
    for n in drop {
        h.remove(n);
    }
}

/// Headers that would make the upstream run another method than the one decided.
const METHOD_OVERRIDES: &[&str] = &[
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// Headers a caller could use to pose as another client; the gateway says
/// who the client is itself (`Forwarded`).
const CLIENT_CLAIMS: &[&str] = &[
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-port",
    "x-real-ip",
];

/// The caller's headers as they will be forwarded, before the gateway adds
/// its credential: without hop-by-hop ones, the caller's credential, what
/// the client sets itself, and claims about the client. What the policy
/// sees and an approval binds are exactly these. `whole_identity_body`:
/// ask for an unencoded, whole body (masking or scrubbing reads it). `Err`
/// names a header the gateway refuses.
pub(crate) fn forwardable(
    caller: &HeaderMap,
    whole_identity_body: bool,
) -> Result<HeaderMap, String> {
    if let Some(n) = METHOD_OVERRIDES.iter().find(|n| caller.contains_key(**n)) {
        return Err(format!(
            "the {n} header would make the upstream run another method than the one decided; send the real method"
        ));
    }
    if caller
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"))
    {
        return Err(
            "the request body is compressed (Content-Encoding), so the gateway could not decide on it; send it unencoded".into(),
        );
    }
    let mut h = caller.clone();
    strip_hop_by_hop(&mut h);
    for n in [header::HOST, header::AUTHORIZATION, header::CONTENT_LENGTH] {
        h.remove(n);
    }
    for n in CLIENT_CLAIMS {
        h.remove(*n);
    }
    drop_console_cookie(&mut h);
    if whole_identity_body {
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("identity"),
        );
        // A byte range of a document cannot be masked by its structure.
        h.remove(header::RANGE);
        h.remove(header::IF_RANGE);
    }
    Ok(h)
}

/// The gateway console's cookies (its sign-in, and an OIDC sign-in in
/// progress): a browser sends them to every port of the gateway's host,
/// this listener's too, and no upstream may see them.
const CONSOLE_COOKIES: &[u8] = b"__Host-gatehouse-";

fn drop_console_cookie(h: &mut HeaderMap) {
    let values: Vec<HeaderValue> = h.get_all(header::COOKIE).iter().cloned().collect();
    let named = |v: &[u8]| {
        v.windows(CONSOLE_COOKIES.len())
            .any(|w| w == CONSOLE_COOKIES)
    };
    if !values.iter().any(|v| named(v.as_bytes())) {
        return;
    }
    h.remove(header::COOKIE);
    // Pairs are cut as bytes: a value that is not UTF-8 keeps its line's
    // other cookies.
    for v in values {
        let kept: Vec<&[u8]> = v
            .as_bytes()
            .split(|b| *b == b';')
            .map(|p| p.trim_ascii())
            .filter(|pair| !pair.is_empty() && !pair.starts_with(CONSOLE_COOKIES))
            .collect();
        if kept.is_empty() {
            continue;
        }
        if let Ok(v) = HeaderValue::from_bytes(&kept.join(&b"; "[..])) {
            h.append(header::COOKIE, v);
        }
    }
}

/// The headers sent upstream: the forwardable ones plus `Via`, `Forwarded`
/// (who the client is) and the gateway's credential.
pub(crate) fn request_headers(
    forwardable: &HeaderMap,
    target: &HttpTarget,
    peer: std::net::IpAddr,
) -> HeaderMap {
    let mut h = forwardable.clone();
    h.append(header::VIA, HeaderValue::from_static("1.1 gatehouse"));
    let for_ = match peer {
        std::net::IpAddr::V4(ip) => format!("for={ip}"),
        std::net::IpAddr::V6(ip) => format!("for=\"[{ip}]\""),
    };
    if let Ok(v) = HeaderValue::from_str(&for_) {
        h.insert(header::FORWARDED, v);
    }
    match &target.auth {
        UpstreamAuth::None => {}
        UpstreamAuth::Bearer(t) => {
            if let Ok(mut v) = HeaderValue::from_str(&format!("Bearer {}", t.expose())) {
                v.set_sensitive(true);
                h.insert(header::AUTHORIZATION, v);
            }
        }
        UpstreamAuth::Header { name, value } => {
            if let Ok(mut v) = HeaderValue::from_str(value.expose()) {
                v.set_sensitive(true);
                h.insert(name.clone(), v);
            }
        }
        UpstreamAuth::Basic { user, password } => {
            let v = format!("Basic {}", basic(user, password.expose()));
            if let Ok(mut v) = HeaderValue::from_str(&v) {
                v.set_sensitive(true);
                h.insert(header::AUTHORIZATION, v);
            }
        }
    }
    h
}

/// The headers sent back: the upstream's minus hop-by-hop ones, minus any
/// that carry the gateway's upstream credential, minus the length and
/// encoding when the body is rewritten.
pub(crate) fn response_headers(
    upstream: &HeaderMap,
    secrets: &[String],
    rewritten: bool,
) -> HeaderMap {
    let mut h = upstream.clone();
    strip_hop_by_hop(&mut h);
    if rewritten {
        h.remove(header::CONTENT_LENGTH);
        h.remove(header::CONTENT_ENCODING);
        // Validators describe the upstream's bytes, not the masked ones.
        h.remove(header::ETAG);
        h.remove("content-md5");
    }
    let leaking: Vec<HeaderName> = h
        .iter()
        .filter(|(_, v)| {
            secrets
                .iter()
                .any(|s| memchr::memmem::find(v.as_bytes(), s.as_bytes()).is_some())
        })
        .map(|(n, _)| n.clone())
        .collect();
    for n in leaking {
        h.remove(n);
    }
    h.append(header::VIA, HeaderValue::from_static("1.1 gatehouse"));
    h
}

/// The forms of the gateway's credential that must never reach a caller:
/// as configured, and as it travels (a basic credential's base64).
pub(crate) fn secrets(auth: &UpstreamAuth) -> Vec<String> {
    match auth {
        UpstreamAuth::None => Vec::new(),
        UpstreamAuth::Bearer(t) => vec![t.expose().to_string()],
        UpstreamAuth::Header { value, .. } => vec![value.expose().to_string()],
        UpstreamAuth::Basic { user, password } => vec![
            password.expose().to_string(),
            basic(user, password.expose()),
        ],
    }
    .into_iter()
    // Too short a secret would mask innocent text; configuration refuses
    // those, this is the second line.
    .filter(|s| s.len() >= 8)
    // As a JSON string would carry it, too.
    .flat_map(|s| {
        let escaped = s.replace('/', "\\/");
        if escaped == s {
            vec![s]
        } else {
            vec![s, escaped]
        }
    })
    .collect()
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_console_cookie_never_goes_upstream() {
        let mut h = super::HeaderMap::new();
        h.insert(
            super::header::COOKIE,
            super::HeaderValue::from_static(
                "a=1; __Host-gatehouse-console=secret; b=2; __Host-gatehouse-oidc=state",
            ),
        );
        super::drop_console_cookie(&mut h);
        assert_eq!(h[super::header::COOKIE], "a=1; b=2");
        h.insert(
            super::header::COOKIE,
            super::HeaderValue::from_static("__Host-gatehouse-console=secret"),
        );
        super::drop_console_cookie(&mut h);
        assert!(h.get(super::header::COOKIE).is_none());
    }

    use super::*;

    #[test]
    fn basic_credentials_are_base64_of_user_and_password() {
        assert_eq!(
            basic("Aladdin", "open sesame"),
            "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
    }

    #[test]
    fn hop_by_hop_headers_and_the_ones_connection_names_are_dropped() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("close, x-private"),
        );
        h.insert("x-private", HeaderValue::from_static("1"));
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        assert!(h.get("x-private").is_none());
        assert!(h.get(header::TE).is_none());
        assert!(h.get(header::CONNECTION).is_none());
        assert!(h.get("x-kept").is_some());
    }
}
