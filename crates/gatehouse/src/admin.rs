//! The admin client: every admin command talks to the running gateway's REST
//! API. The API address comes from `--server` or the configuration's
//! `[server] api_listen`; the admin key from `GATEHOUSE_ADMIN_KEY` or the
//! configuration's `data_dir/admin.key`.

use crate::config::RawConfig;
use crate::serve::ADMIN_KEY_FILE;
use anyhow::{anyhow, bail, Context, Result};
use gatehouse_api::{
    AccessReview, ApprovalFilter, CreateTokenRequest, CreatedToken, Decided, ErrorBody,
    PolicyReloaded, Sealed, SignOffRequest, SignedOff, VoteRequest,
};
use gatehouse_core::{ApprovalRequest, SessionDetail, SessionFilter, SessionSummary, TokenRecord};
use serde::de::DeserializeOwned;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

/// Sessions searched for an id given by a prefix.
const PREFIX_SEARCH: u32 = 10_000;

/// How long one admin request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a discovery (`masking discover`) may take.
const DISCOVER_TIMEOUT: Duration = Duration::from_secs(6 * 3600);

/// The API's base URL from `--server`: a URL (`http://…`, `https://…`) or
/// `host:port`, the form `[server] api_listen` is written in.
fn api_base(server: &str) -> Result<String> {
    let s = server.trim().trim_end_matches('/');
    let url = if s.contains("://") {
        s.to_string()
    } else {
        format!("http://{s}")
    };
    let parsed = reqwest::Url::parse(&url)
        .with_context(|| format!("--server {server:?} is not host:port or an http(s) URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        bail!("--server {server:?} is not host:port or an http(s) URL");
    }
    Ok(url)
}

/// A client of the gateway's REST API.
pub struct AdminClient {
    base: String,
    key: String,
    http: reqwest::Client,
}

impl AdminClient {
    /// A client that authenticates with `credential` (an approver's
    /// Gatehouse token) and needs no admin key.
    pub fn with_token(
        config: Option<&Path>,
        server: Option<&str>,
        credential: &str,
    ) -> Result<Self> {
        let (base, _) = Self::target(config, server)?;
        Self::build(base, credential.trim().to_string())
    }

    /// Builds a client from the CLI's options, with the admin key.
    pub fn new(config: Option<&Path>, server: Option<&str>) -> Result<Self> {
        let (base, raw) = Self::target(config, server)?;
        let key = match (std::env::var("GATEHOUSE_ADMIN_KEY"), &raw) {
            (Ok(k), _) if !k.trim().is_empty() => k.trim().to_string(),
            (_, Some(r)) => {
                let path = r.data_dir().join(ADMIN_KEY_FILE);
                std::fs::read_to_string(&path)
                    .with_context(|| {
                        format!(
                            "reading the admin key {} (it is created when `gatehouse serve` first starts; or set GATEHOUSE_ADMIN_KEY)",
                            path.display()
                        )
                    })?
                    .trim()
                    .to_string()
            }
            _ => bail!("no admin key: set GATEHOUSE_ADMIN_KEY, or pass --config so it can be read from data_dir/admin.key"),
        };
        Self::build(base, key)
    }

    /// The API's address (from `--server` or the configuration), and the
    /// configuration if one was given.
    fn target(config: Option<&Path>, server: Option<&str>) -> Result<(String, Option<RawConfig>)> {
        let raw = match config {
            Some(path) => Some(RawConfig::parse(path).map_err(|p| anyhow!("{p}"))?),
            None => None,
        };
        let base = match (server, &raw) {
            (Some(s), _) => api_base(s)?,
            (None, Some(r)) => format!("http://{}", r.api_listen()),
            (None, None) => bail!(
                "no gateway to talk to: pass --config with the gateway's configuration file, or --server with its API address"
            ),
        };
        Ok((base, raw))
    }

    fn build(base: String, key: String) -> Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(REQUEST_TIMEOUT)
            .build()
            .context("setting up the HTTP client")?;
        Ok(Self { base, key, http })
    }

    /// Approval requests, newest first.
    pub async fn approvals(&self, filter: &ApprovalFilter) -> Result<Vec<ApprovalRequest>> {
        self.send(
            self.http
                .get(format!("{}/v1/approvals", self.base))
                .query(filter),
        )
        .await
    }

    /// One approval request (by its id or a unique prefix of it).
    pub async fn approval(&self, id: &str) -> Result<ApprovalRequest> {
        let id = self.approval_id(id).await?;
        self.send(self.http.get(format!("{}/v1/approvals/{id}", self.base)))
            .await
    }

    /// Approves (`approve`) or denies request `id`.
    pub async fn decide_approval(&self, id: &str, approve: bool, comment: &str) -> Result<Decided> {
        let id = self.approval_id(id).await?;
        let verb = if approve { "approve" } else { "deny" };
        self.send(
            self.http
                .post(format!("{}/v1/approvals/{id}/{verb}", self.base))
                .json(&VoteRequest {
                    comment: comment.to_string(),
                }),
        )
        .await
    }

    async fn send<T: DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> Result<T> {
        let resp = self.answer(req).await?;
        resp.json()
            .await
            .context("the gateway API sent an unreadable answer")
    }

    /// A successful answer, or its error as a message.
    async fn answer(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        let resp = req.bearer_auth(&self.key).send().await.map_err(|e| {
            if e.is_connect() {
                anyhow!(
                    "cannot reach the gateway API at {}: is `gatehouse serve` running? (set --server or [server] api_listen)",
                    self.base
                )
            } else if e.is_timeout() {
                anyhow!(
                    "the gateway API at {} did not answer within {} s; it may be overloaded or stuck (its log says why)",
                    self.base,
                    REQUEST_TIMEOUT.as_secs()
                )
            } else {
                anyhow!("request to the gateway API at {} failed: {e}", self.base)
            }
        })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let text = resp.text().await.unwrap_or_default();
        let msg = serde_json::from_str::<ErrorBody>(&text)
            .map(|b| b.error)
            .unwrap_or(text);
        bail!("{msg} (HTTP {})", status.as_u16())
    }

    /// Creates a token.
    pub async fn create_token(&self, req: &CreateTokenRequest) -> Result<CreatedToken> {
        self.send(self.http.post(format!("{}/v1/tokens", self.base)).json(req))
            .await
    }

    /// Exchanges this client's token for an SSH certificate.
    pub async fn ssh_certificate(
        &self,
        req: &gatehouse_api::CertificateRequest,
    ) -> Result<gatehouse_api::IssuedCertificate> {
        self.send(
            self.http
                .post(format!("{}/v1/ssh/certificates", self.base))
                .json(req),
        )
        .await
    }

    /// Registers an SSH public key to a service identity.
    pub async fn register_ssh_key(
        &self,
        req: &gatehouse_api::RegisterKeyRequest,
    ) -> Result<TokenRecord> {
        self.send(
            self.http
                .post(format!("{}/v1/ssh/keys", self.base))
                .json(req),
        )
        .await
    }

    /// Lists tokens.
    pub async fn list_tokens(&self) -> Result<Vec<TokenRecord>> {
        self.send(self.http.get(format!("{}/v1/tokens", self.base)))
            .await
    }

    /// Revokes a token.
    pub async fn revoke_token(&self, id: &str) -> Result<TokenRecord> {
        self.send(
            self.http
                .post(format!("{}/v1/tokens/{id}/revoke", self.base)),
        )
        .await
    }

    /// Lists sessions.
    pub async fn list_sessions(&self, filter: &SessionFilter) -> Result<Vec<SessionSummary>> {
        self.send(
            self.http
                .get(format!("{}/v1/sessions", self.base))
                .query(filter),
        )
        .await
    }

    /// The gateway nodes the store knows (one, with the embedded store).
    pub async fn list_nodes(&self) -> Result<Vec<gatehouse_core::NodeRecord>> {
        self.send(self.http.get(format!("{}/v1/nodes", self.base)))
            .await
    }

    /// Makes the gateway re-read its policy files.
    pub async fn reload_policy(&self) -> Result<PolicyReloaded> {
        self.send(self.http.post(format!("{}/v1/policy/reload", self.base)))
            .await
    }

    /// Columns the masking detectors found sensitive.
    pub async fn sensitive_columns(
        &self,
        filter: &gatehouse_api::ColumnFilter,
    ) -> Result<Vec<gatehouse_core::SensitiveColumn>> {
        self.send(
            self.http
                .get(format!("{}/v1/masking/columns", self.base))
                .query(filter),
        )
        .await
    }

    /// Removes a found sensitive column.
    pub async fn remove_sensitive_column(
        &self,
        id: &str,
    ) -> Result<gatehouse_core::SensitiveColumn> {
        self.send(
            self.http
                .post(format!("{}/v1/masking/columns/{id}/remove", self.base)),
        )
        .await
    }

    /// Runs a discovery, handing each JSON line of the answer to `line` as it
    /// arrives (no overall time limit: sampling a large database takes time).
    pub async fn discover(
        &self,
        req: &gatehouse_api::DiscoverRequest,
        mut line: impl FnMut(serde_json::Value) -> Result<()>,
    ) -> Result<()> {
        let mut resp = self
            .http
            .post(format!("{}/v1/masking/discover", self.base))
            .json(req)
            .bearer_auth(&self.key)
            .timeout(DISCOVER_TIMEOUT)
            .send()
            .await
            .map_err(|e| {
                if e.is_connect() {
                    anyhow!(
                        "cannot reach the gateway API at {}: is `gatehouse serve` running? (set --server or [server] api_listen)",
                        self.base
                    )
                } else {
                    anyhow!("request to the gateway API at {} failed: {e}", self.base)
                }
            })?;
        let status = resp.status();
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            let msg = serde_json::from_str::<ErrorBody>(&text)
                .map(|b| b.error)
                .unwrap_or(text);
            bail!("{msg} (HTTP {})", status.as_u16());
        }
        let mut pending: Vec<u8> = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .context("the gateway API stopped answering mid-discovery")?
        {
            pending.extend_from_slice(&chunk);
            while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                let text: Vec<u8> = pending.drain(..=end).collect();
                let value = serde_json::from_slice(&text)
                    .context("the gateway API sent an unreadable line")?;
                line(value)?;
            }
        }
        Ok(())
    }

    /// Makes the gateway sign a checkpoint over its whole evidence log now.
    pub async fn seal_evidence(&self) -> Result<Sealed> {
        self.send(
            self.http
                .post(format!("{}/v1/evidence/checkpoint", self.base)),
        )
        .await
    }

    /// The access review as the gateway computes it now.
    pub async fn access_review(&self, client_ip: Option<IpAddr>) -> Result<AccessReview> {
        let mut req = self.http.get(format!("{}/v1/access-review", self.base));
        if let Some(ip) = client_ip {
            req = req.query(&[("client_ip", ip.to_string())]);
        }
        self.send(req).await
    }

    /// Records that the access review was performed.
    pub async fn sign_off_access_review(&self, req: &SignOffRequest) -> Result<SignedOff> {
        self.send(
            self.http
                .post(format!("{}/v1/access-review/sign-off", self.base))
                .json(req),
        )
        .await
    }

    /// One session with its statements.
    /// An exec or attach session's recording (asciicast v2), checked by
    /// the gateway against the hash in the evidence log.
    pub async fn recording(&self, id: &str, seq: u64) -> Result<Vec<u8>> {
        let id = self.session_id(id).await?;
        let resp = self
            .answer(
                self.http
                    .get(format!("{}/v1/sessions/{id}/recordings/{seq}", self.base)),
            )
            .await?;
        Ok(resp
            .bytes()
            .await
            .context("the gateway API's answer broke off")?
            .to_vec())
    }

    pub async fn session(&self, id: &str) -> Result<SessionDetail> {
        let id = self.session_id(id).await?;
        self.send(self.http.get(format!("{}/v1/sessions/{id}", self.base)))
            .await
    }

    /// A whole session id from a unique prefix of it (among the newest
    /// [`PREFIX_SEARCH`] sessions); a whole id as it is.
    async fn session_id(&self, given: &str) -> Result<String> {
        if let Some(whole) = as_given(given, "session")? {
            return Ok(whole);
        }
        let recent = self
            .list_sessions(&SessionFilter {
                limit: Some(PREFIX_SEARCH),
                ..SessionFilter::default()
            })
            .await?;
        unique_prefix(
            given,
            "session",
            recent.iter().map(|s| s.start.id.to_string()),
        )
    }

    /// A whole approval request id from a unique prefix of it (among the
    /// newest [`PREFIX_SEARCH`] requests); a whole id as it is.
    async fn approval_id(&self, given: &str) -> Result<String> {
        if let Some(whole) = as_given(given, "request")? {
            return Ok(whole);
        }
        let recent = self
            .approvals(&ApprovalFilter {
                state: None,
                limit: Some(PREFIX_SEARCH),
            })
            .await?;
        unique_prefix(given, "request", recent.iter().map(|r| r.id.to_string()))
    }
}

/// `Some(id)` when `given` is to be used as it is: a whole id, or text that
/// is no id at all (the API says what is wrong with it); an error when it
/// is too short a prefix.
fn as_given(given: &str, what: &str) -> Result<Option<String>> {
    let id_like = given.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    if given.len() == 36 || !id_like {
        return Ok(Some(given.to_string()));
    }
    if given.len() < 4 {
        bail!("{what} id prefix {given:?} is too short: give at least 4 characters");
    }
    Ok(None)
}

/// The one id among `ids` that starts with `given`.
fn unique_prefix(given: &str, what: &str, ids: impl Iterator<Item = String>) -> Result<String> {
    let ids: Vec<String> = ids.filter(|id| id.starts_with(given)).collect();
    match ids.as_slice() {
        [one] => Ok(one.clone()),
        [] => bail!(
            "no {what} id starts with {given:?} among the newest {PREFIX_SEARCH}; give the whole id"
        ),
        many => bail!(
            "{} {what}s' ids start with {given:?} ({}); give more of the id",
            many.len(),
            many.join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::{api_base, as_given, unique_prefix};

    #[test]
    fn ids_are_found_by_a_unique_prefix() {
        let ids = || {
            [
                "01a22b79-b7eb-7655-bc2a-267157b2e4f0",
                "01a22b79-c1b5-7345-908e-b09c11aa61a9",
            ]
            .into_iter()
            .map(String::from)
        };
        assert_eq!(
            unique_prefix("01a22b79-c1", "request", ids()).unwrap(),
            "01a22b79-c1b5-7345-908e-b09c11aa61a9"
        );
        let many = unique_prefix("01a22b79", "request", ids())
            .unwrap_err()
            .to_string();
        assert!(many.contains("2 requests' ids start with"), "{many}");
        assert!(unique_prefix("ffff", "request", ids()).is_err());
        assert!(as_given("01a", "request").is_err());
        assert_eq!(
            as_given("not-an-id!", "request").unwrap().as_deref(),
            Some("not-an-id!")
        );
        assert_eq!(as_given("01a22b79", "request").unwrap(), None);
    }

    #[test]
    fn server_takes_host_port_and_urls() {
        assert_eq!(api_base("127.0.0.1:8089").unwrap(), "http://127.0.0.1:8089");
        assert_eq!(api_base("http://gw:8089/").unwrap(), "http://gw:8089");
        assert_eq!(
            api_base("https://gw.example").unwrap(),
            "https://gw.example"
        );
        assert!(api_base("ftp://gw").is_err());
        assert!(api_base("").is_err());
    }
}
