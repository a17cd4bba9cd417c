//! Discovery and JWKS over HTTPS.

use super::keys::KeyFetcher;
use super::spec::{check_fetch_url, IssuerSettings};
use async_trait::async_trait;
use serde_json::Value;
use std::time::Duration;

/// Largest discovery or JWKS document read (real ones are a few KiB).
const MAX_DOCUMENT: usize = 1024 * 1024;
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Fetches keys over HTTP(S): the discovery document's `jwks_uri` (or the
/// configured one), then the JWKS.
pub struct HttpKeyFetcher {
    client: reqwest::Client,
}

impl HttpKeyFetcher {
    /// A fetcher trusting the system's roots plus the issuer's `ca_file`.
    pub fn new(issuer: &IssuerSettings) -> Result<Self, String> {
        let mut builder = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("gatehouse/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = &issuer.ca_pem {
            let certs =
                reqwest::Certificate::from_pem_bundle(pem).map_err(|e| format!("ca_file: {e}"))?;
            for c in certs {
                builder = builder.add_root_certificate(c);
            }
        }
        let client = builder
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        Ok(Self { client })
    }

    /// POSTs `form` to `url` and reads the JSON answer, whatever its status
    /// (an OAuth error answer is JSON too).
    pub(crate) async fn post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
    ) -> Result<Value, String> {
        check_fetch_url(url)?;
        let resp = self
            .client
            .post(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .form(form)
            .send()
            .await
            .map_err(|e| format!("POST {url}: {}", error_chain(&e)))?;
        let status = resp.status();
        let body = read_capped(resp, "POST", url).await?;
        serde_json::from_slice(&body).map_err(|_| format!("POST {url}: HTTP {status}, not JSON"))
    }

    pub(crate) async fn get_json(&self, url: &str) -> Result<Value, String> {
        check_fetch_url(url)?;
        let resp = self
            .client
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| format!("GET {url}: {}", error_chain(&e)))?;
        if !resp.status().is_success() {
            return Err(format!("GET {url}: HTTP {}", resp.status()));
        }
        let body = read_capped(resp, "GET", url).await?;
        serde_json::from_slice(&body).map_err(|e| format!("GET {url}: not JSON: {e}"))
    }
}

/// The answer's body, refused past [`MAX_DOCUMENT`] as it arrives (never
/// read whole first).
async fn read_capped(
    mut resp: reqwest::Response,
    method: &str,
    url: &str,
) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| format!("{method} {url}: {}", error_chain(&e)))?
    {
        if body.len() + chunk.len() > MAX_DOCUMENT {
            return Err(format!("{method} {url}: the document is larger than 1 MiB"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The error and its causes, one line (reqwest's Display hides the cause).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[async_trait]
impl KeyFetcher for HttpKeyFetcher {
    async fn fetch(&self, issuer: &IssuerSettings) -> Result<Value, String> {
        let jwks_uri = match &issuer.jwks_uri {
            Some(u) => u.clone(),
            None => {
                let url = issuer.discovery_url();
                let doc = self.get_json(&url).await?;
                let said = doc.get("issuer").and_then(Value::as_str).unwrap_or("");
                // OpenID Connect Discovery 4.3: the document must name the issuer it was fetched for.
                if said.trim_end_matches('/') != issuer.issuer.trim_end_matches('/') {
                    return Err(format!(
                        "{url} names issuer {said:?}, not {:?}: check the issuer URL",
                        issuer.issuer
                    ));
                }
                doc.get("jwks_uri")
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("{url} has no jwks_uri"))?
                    .to_string()
            }
        };
        self.get_json(&jwks_uri).await
    }
}
