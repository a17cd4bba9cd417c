//! People signing in with an OIDC provider: the authorization code flow
//! with PKCE (RFC 7636, S256) and a nonce, as a confidential or a public
//! client. The ID token it obtains is then checked like any workload token
//! of the same issuer (signature, issuer, audience = this client, expiry),
//! so a person's identity and groups come from it exactly as a workload's.

use super::fetch::HttpKeyFetcher;
use super::spec::{check_fetch_url, IssuerSettings};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

/// One sign-in in progress: what the browser is sent with, and what only
/// the gateway keeps until the provider sends the browser back.
pub struct PendingSignIn {
    /// Sent to the provider and back; binds the answer to this sign-in.
    pub state: String,
    /// Must come back inside the ID token.
    pub nonce: String,
    /// PKCE: only its hash goes to the provider.
    pub verifier: String,
}

impl PendingSignIn {
    /// Fresh random values.
    pub fn new() -> Self {
        Self {
            state: random(),
            nonce: random(),
            verifier: random(),
        }
    }

    /// The PKCE challenge: base64url(SHA-256(verifier)).
    pub fn challenge(&self) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(self.verifier.as_bytes()))
    }
}

impl Default for PendingSignIn {
    fn default() -> Self {
        Self::new()
    }
}

fn random() -> String {
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

/// The provider's two endpoints, from its discovery document.
struct Endpoints {
    authorization: String,
    token: String,
}

/// An OIDC client for people's sign-in.
pub struct CodeFlow {
    issuer: IssuerSettings,
    client_id: String,
    client_secret: Option<String>,
    redirect_url: String,
    scopes: Vec<String>,
    http: HttpKeyFetcher,
    endpoints: OnceCell<Endpoints>,
}

impl std::fmt::Debug for CodeFlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeFlow")
            .field("issuer", &self.issuer.name)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "…"))
            .field("redirect_url", &self.redirect_url)
            .finish()
    }
}

impl CodeFlow {
    /// A client of `issuer` registered as `client_id` (with its secret, for
    /// a confidential client), sending people back to `redirect_url`.
    pub fn new(
        issuer: IssuerSettings,
        client_id: String,
        client_secret: Option<String>,
        redirect_url: String,
        scopes: Vec<String>,
    ) -> Result<Self, String> {
        let http = HttpKeyFetcher::new(&issuer)?;
        Ok(Self {
            issuer,
            client_id,
            client_secret,
            redirect_url,
            scopes,
            http,
            endpoints: OnceCell::new(),
        })
    }

    /// The configured issuer's name (what the sign-in button says).
    pub fn issuer_name(&self) -> &str {
        &self.issuer.name
    }

    async fn endpoints(&self) -> Result<&Endpoints, String> {
        self.endpoints
            .get_or_try_init(|| async {
                let url = self.issuer.discovery_url();
                let doc = self.http.get_json(&url).await?;
                let said = doc.get("issuer").and_then(Value::as_str).unwrap_or("");
                if said.trim_end_matches('/') != self.issuer.issuer.trim_end_matches('/') {
                    return Err(format!(
                        "{url} names issuer {said:?}, not {:?}",
                        self.issuer.issuer
                    ));
                }
                let field = |name: &str| -> Result<String, String> {
                    let v = doc
                        .get(name)
                        .and_then(Value::as_str)
                        .ok_or_else(|| format!("{url} has no {name}"))?;
                    check_fetch_url(v)?;
                    Ok(v.to_string())
                };
                Ok(Endpoints {
                    authorization: field("authorization_endpoint")?,
                    token: field("token_endpoint")?,
                })
            })
            .await
    }

    /// Where to send the browser to sign in.
    pub async fn authorization_url(&self, pending: &PendingSignIn) -> Result<String, String> {
        let endpoints = self.endpoints().await?;
        let mut url = url::Url::parse(&endpoints.authorization)
            .map_err(|e| format!("authorization_endpoint: {e}"))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", &self.redirect_url)
            .append_pair("scope", &self.scopes.join(" "))
            .append_pair("state", &pending.state)
            .append_pair("nonce", &pending.nonce)
            .append_pair("code_challenge", &pending.challenge())
            .append_pair("code_challenge_method", "S256");
        Ok(url.into())
    }

    /// Exchanges the code the browser brought back for the ID token.
    pub async fn id_token(&self, code: &str, pending: &PendingSignIn) -> Result<String, String> {
        let endpoints = self.endpoints().await?;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.redirect_url.as_str()),
            ("code_verifier", pending.verifier.as_str()),
            ("client_id", self.client_id.as_str()),
        ];
        if let Some(secret) = &self.client_secret {
            form.push(("client_secret", secret.as_str()));
        }
        let answer = self.http.post_form(&endpoints.token, &form).await?;
        answer
            .get("id_token")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| {
                let why = answer
                    .get("error_description")
                    .or_else(|| answer.get("error"))
                    .and_then(Value::as_str)
                    .unwrap_or("no id_token in the answer");
                format!("the provider's token endpoint refused the code: {why}")
            })
    }
}

/// The claims of a JWT whose signature was already verified (the
/// authenticator checked it): the payload, decoded.
fn claims_of(verified_jwt: &str) -> Option<Value> {
    let payload = verified_jwt.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The `nonce` claim of a verified JWT.
pub fn nonce_of(verified_jwt: &str) -> Option<String> {
    claims_of(verified_jwt)?
        .get("nonce")?
        .as_str()
        .map(str::to_string)
}

impl CodeFlow {
    /// Whether a verified ID token was issued to this client (OIDC Core
    /// 3.1.3.7: `aud` names it and, when present, so does `azp`), so a token
    /// another application obtained cannot finish this sign-in.
    pub fn issued_to_this_client(&self, verified_jwt: &str) -> bool {
        let Some(claims) = claims_of(verified_jwt) else {
            return false;
        };
        let aud_ok = match claims.get("aud") {
            Some(Value::String(a)) => *a == self.client_id,
            Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(&self.client_id)),
            _ => false,
        };
        let azp_ok = claims
            .get("azp")
            .is_none_or(|a| a.as_str() == Some(&self.client_id));
        aud_ok && azp_ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_is_the_rfc_7636_s256_of_the_verifier() {
        // RFC 7636, appendix B.
        let p = PendingSignIn {
            state: String::new(),
            nonce: String::new(),
            verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into(),
        };
        assert_eq!(p.challenge(), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        let a = PendingSignIn::new();
        let b = PendingSignIn::new();
        assert_ne!(a.state, b.state);
        assert_ne!(a.verifier, a.nonce);
        assert_eq!(a.verifier.len(), 43);
    }

    #[test]
    fn the_nonce_is_read_from_the_payload() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"sub":"a","nonce":"n-1"}"#);
        assert_eq!(nonce_of(&format!("h.{payload}.s")).as_deref(), Some("n-1"));
        assert_eq!(nonce_of("not a jwt"), None);
    }
}
