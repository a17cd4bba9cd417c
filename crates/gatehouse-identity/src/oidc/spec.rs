//! `[[identity.oidc]]`: one trusted issuer, as written and as resolved.

use super::preset::Preset;
use crate::validate_name;
use jsonwebtoken::Algorithm;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

/// A string or a list of strings, as TOML allows either.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// `key = "x"`.
    One(String),
    /// `key = ["x", "y"]`.
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(s) => vec![s],
            Self::Many(v) => v,
        }
    }
}

/// One `[[identity.oidc]]` table as written. Unknown keys are errors.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerSpec {
    name: Option<String>,
    preset: Option<String>,
    issuer: Option<String>,
    accepted_issuers: Option<Vec<String>>,
    jwks_uri: Option<String>,
    audience: Option<OneOrMany>,
    subject_claim: Option<String>,
    groups_claim: Option<OneOrMany>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    claims: Vec<String>,
    #[serde(default)]
    required_claims: Vec<String>,
    client_id_claim: Option<OneOrMany>,
    on_behalf_of_claim: Option<String>,
    algorithms: Option<Vec<String>>,
    clock_skew: Option<String>,
    tenant: Option<String>,
    ca_file: Option<String>,
    refresh_interval: Option<String>,
    min_refresh_interval: Option<String>,
}

/// A trusted issuer, checked and with its preset applied.
#[derive(Debug, Clone)]
pub struct IssuerSettings {
    /// Short name: prefixes subjects and groups (`github/…`), names the issuer in records.
    pub name: String,
    /// The preset applied, if any.
    pub preset: Option<Preset>,
    /// Discovery base: `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    /// `iss` values accepted (the issuer itself, and for Entra its v1 form).
    pub accepted_issuers: Vec<String>,
    /// JWKS location, when set instead of discovery.
    pub jwks_uri: Option<String>,
    /// Accepted `aud` values: a token must name at least one.
    pub audiences: Vec<String>,
    /// The claim that names the caller.
    pub subject_claim: String,
    /// Claims that list groups (or app roles).
    pub groups_claims: Vec<String>,
    /// Groups every identity from this issuer gets, as written (not prefixed).
    pub static_groups: Vec<String>,
    /// Claims naming the OAuth client, first present wins.
    pub client_id_claims: Vec<String>,
    /// Claims giving the token's id, first present wins.
    pub token_id_claims: Vec<String>,
    /// Attribute name and claim path (nested names split at `/`).
    pub claims: Vec<(String, Vec<String>)>,
    /// Claims a token must carry.
    pub required_claims: Vec<String>,
    /// A claim naming the party the subject acts for.
    pub on_behalf_of_claim: Option<String>,
    /// Signature algorithms accepted.
    pub algorithms: Vec<Algorithm>,
    /// Leeway for `exp`, `nbf` and `iat`.
    pub clock_skew: Duration,
    /// Entra tenant the token's `tid` must equal.
    pub tenant: Option<String>,
    /// Extra trusted CA certificates (PEM) for the issuer's HTTPS.
    pub ca_pem: Option<Vec<u8>>,
    /// How often keys are refetched.
    pub refresh_interval: Duration,
    /// Least time between two fetches (unknown-`kid` refreshes are limited to this).
    pub min_refresh_interval: Duration,
}

/// Asymmetric algorithms accepted when `algorithms` is not set.
pub const DEFAULT_ALGORITHMS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(60);
const DEFAULT_REFRESH: Duration = Duration::from_secs(15 * 60);
const DEFAULT_MIN_REFRESH: Duration = Duration::from_secs(30);

/// Whether `url` may be fetched: HTTPS anywhere, plain HTTP only on loopback.
pub(crate) fn check_fetch_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    // Key URLs appear in logs and in refusals: they must carry no secret.
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(
            "a user name or password in the URL is not supported: OIDC discovery and keys are public"
                .into(),
        );
    }
    match parsed.scheme() {
        "https" => Ok(()),
        "http" => {
            let loopback = match parsed.host() {
                Some(url::Host::Domain(d)) => d == "localhost",
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            };
            if loopback {
                Ok(())
            } else {
                Err(format!(
                    "{url:?} uses plain http: keys must be fetched over https (http is accepted only for loopback test issuers)"
                ))
            }
        }
        other => Err(format!("{url:?}: unsupported scheme {other:?}; use https")),
    }
}

impl IssuerSpec {
    /// Checks the table and applies its preset. Problems are reported as
    /// (key within the table, reason); `path` resolves relative file names.
    pub fn resolve(
        &self,
        path: &dyn Fn(&str) -> PathBuf,
    ) -> Result<IssuerSettings, Vec<(&'static str, String)>> {
        let mut problems: Vec<(&'static str, String)> = Vec::new();
        let name = self.name.clone().unwrap_or_default();
        if name.is_empty() {
            problems.push(("name", "missing: a short name such as \"github\"; subjects and groups from this issuer are prefixed with it".into()));
        } else if validate_name("issuer name", &name).is_err() || name.contains(':') {
            problems.push((
                "name",
                format!("{name:?}: use 1-128 letters, digits and . _ - @"),
            ));
        }
        let preset = match self.preset.as_deref().map(Preset::from_str) {
            None => None,
            Some(Ok(p)) => Some(p),
            Some(Err(e)) => {
                problems.push(("preset", e));
                None
            }
        };
        let defaults = preset.unwrap_or(Preset::Generic).defaults();

        let tenant = self.tenant.clone();
        if let Some(t) = &tenant {
            if preset != Some(Preset::Entra) {
                problems.push(("tenant", "only the entra preset pins a tenant".into()));
            } else if t.is_empty() || !t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                problems.push((
                    "tenant",
                    format!("{t:?} is not a tenant id (a GUID such as 72f988bf-86f1-41af-91ab-2d7cd011db47)"),
                ));
            }
        }
        let issuer = match (&self.issuer, preset, &tenant) {
            // Kept exactly as written: `iss` is compared exactly (Auth0's ends in `/`).
            (Some(i), _, _) => Some(i.clone()),
            (None, Some(Preset::Entra), Some(t)) => {
                Some(format!("https://login.microsoftonline.com/{t}/v2.0"))
            }
            (None, _, _) => defaults.issuer.map(str::to_string),
        };
        if preset == Some(Preset::Entra) && tenant.is_none() {
            problems.push((
                "tenant",
                "missing: the entra preset accepts tokens of one tenant only; set tenant = \"<directory (tenant) id>\"".into(),
            ));
        }
        let issuer = match issuer {
            Some(i) => {
                if let Err(e) = check_fetch_url(&i) {
                    problems.push(("issuer", e));
                }
                i
            }
            None => {
                // Entra's issuer follows from the tenant, whose absence is already reported.
                if preset != Some(Preset::Entra) {
                    problems.push((
                        "issuer",
                        "missing: the issuer URL, exactly as tokens' iss claim gives it".into(),
                    ));
                }
                String::new()
            }
        };
        let accepted_issuers = match &self.accepted_issuers {
            Some(list) if !list.is_empty() => list.clone(),
            Some(_) => {
                problems.push((
                    "accepted_issuers",
                    "empty: leave it out to accept the issuer itself".into(),
                ));
                Vec::new()
            }
            None => {
                let mut v = vec![issuer.clone()];
                if let (Some(Preset::Entra), Some(t)) = (preset, &tenant) {
                    // v1 access tokens (and managed identities asking for v1) carry this form.
                    v.push(format!("https://sts.windows.net/{t}/"));
                }
                v
            }
        };
        if let Some(u) = &self.jwks_uri {
            if let Err(e) = check_fetch_url(u) {
                problems.push(("jwks_uri", e));
            }
        }
        let audiences = self
            .audience
            .clone()
            .map(OneOrMany::into_vec)
            .unwrap_or_default();
        if audiences.is_empty() || audiences.iter().any(String::is_empty) {
            problems.push((
                "audience",
                "missing: the audience your workloads request tokens for, e.g. \"api://gatehouse\"; a token must name one of them".into(),
            ));
        }
        let subject_claim = self
            .subject_claim
            .clone()
            .unwrap_or_else(|| defaults.subject_claim.to_string());
        let groups_claims = match &self.groups_claim {
            Some(g) => g.clone().into_vec(),
            None => owned(defaults.groups_claims),
        };
        for g in &self.groups {
            if validate_name("group", g).is_err() {
                problems.push((
                    "groups",
                    format!("{g:?}: use 1-128 letters, digits and . _ - @ :"),
                ));
            }
        }
        let client_id_claims = match &self.client_id_claim {
            Some(c) => c.clone().into_vec(),
            None => owned(defaults.client_id_claims),
        };
        let mut claims: Vec<(String, Vec<String>)> = defaults
            .claims
            .iter()
            .map(|(tag, path)| (tag.to_string(), split_path(path)))
            .collect();
        for c in &self.claims {
            let (tag, path) = c.split_once('=').unwrap_or((c.as_str(), c.as_str()));
            let (tag, path) = (tag.trim(), path.trim());
            if tag.is_empty() || path.is_empty() || path.split('/').any(str::is_empty) {
                problems.push((
                    "claims",
                    format!("{c:?}: write a claim name (\"repository\"), a nested path (\"kubernetes.io/namespace\") or attribute=path (\"namespace=kubernetes.io/namespace\")"),
                ));
                continue;
            }
            claims.retain(|(t, _)| t != tag);
            claims.push((tag.to_string(), split_path(path)));
        }
        let mut required_claims = owned(defaults.required_claims);
        for r in &self.required_claims {
            if !required_claims.contains(r) {
                required_claims.push(r.clone());
            }
        }
        let algorithms = match &self.algorithms {
            None => DEFAULT_ALGORITHMS.to_vec(),
            Some(list) if list.is_empty() => {
                problems.push((
                    "algorithms",
                    "empty: leave it out for the asymmetric defaults".into(),
                ));
                Vec::new()
            }
            Some(list) => {
                let mut out = Vec::new();
                for a in list {
                    match parse_algorithm(a) {
                        Ok(alg) => out.push(alg),
                        Err(e) => problems.push(("algorithms", e)),
                    }
                }
                out
            }
        };
        let mut duration = |key: &'static str, v: &Option<String>, default: Duration| match v {
            None => default,
            Some(s) => match humantime::parse_duration(s) {
                Ok(d) => d,
                Err(e) => {
                    problems.push((key, format!("{s:?} is not a duration such as \"30s\": {e}")));
                    default
                }
            },
        };
        let clock_skew = duration("clock_skew", &self.clock_skew, DEFAULT_CLOCK_SKEW);
        let refresh_interval =
            duration("refresh_interval", &self.refresh_interval, DEFAULT_REFRESH);
        let min_refresh_interval = duration(
            "min_refresh_interval",
            &self.min_refresh_interval,
            DEFAULT_MIN_REFRESH,
        );
        if clock_skew > Duration::from_secs(600) {
            problems.push((
                "clock_skew",
                "more than 10 minutes lets expired tokens in for too long".into(),
            ));
        }
        if min_refresh_interval < Duration::from_secs(1) {
            problems.push((
                "min_refresh_interval",
                "under 1s would let a flood of bad tokens hammer the issuer".into(),
            ));
        }
        if refresh_interval < min_refresh_interval {
            problems.push((
                "refresh_interval",
                "must not be shorter than min_refresh_interval".into(),
            ));
        }
        let ca_pem = match &self.ca_file {
            None => None,
            Some(f) => {
                let p = path(f);
                match read_ca(&p) {
                    Ok(pem) => Some(pem),
                    Err(e) => {
                        problems.push(("ca_file", e));
                        None
                    }
                }
            }
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(IssuerSettings {
            name,
            preset,
            issuer,
            accepted_issuers,
            jwks_uri: self.jwks_uri.clone(),
            audiences,
            subject_claim,
            groups_claims,
            static_groups: self.groups.clone(),
            client_id_claims,
            token_id_claims: owned(defaults.token_id_claims),
            claims,
            required_claims,
            on_behalf_of_claim: self.on_behalf_of_claim.clone(),
            algorithms,
            clock_skew,
            tenant,
            ca_pem,
            refresh_interval,
            min_refresh_interval,
        })
    }
}

fn owned(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn split_path(path: &str) -> Vec<String> {
    path.split('/').map(str::to_string).collect()
}

fn read_ca(p: &Path) -> Result<Vec<u8>, String> {
    let pem = std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
    reqwest::Certificate::from_pem_bundle(&pem)
        .ok()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| format!("{} holds no PEM certificate", p.display()))?;
    Ok(pem)
}

/// Parses an algorithm name from the allow-list, refusing symmetric ones.
fn parse_algorithm(a: &str) -> Result<Algorithm, String> {
    match a {
        "none" => Err("\"none\" would accept unsigned tokens; it is never allowed".into()),
        "HS256" | "HS384" | "HS512" => Err(format!(
            "{a:?} is an HMAC (shared secret) algorithm: anyone holding the issuer's public keys could forge tokens; use RS*, PS*, ES256, ES384 or EdDSA"
        )),
        _ => Algorithm::from_str(a).map_err(|_| {
            format!("{a:?} is not a JWS algorithm; expected RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384 or EdDSA")
        }),
    }
}

impl IssuerSettings {
    /// The discovery document's URL.
    pub fn discovery_url(&self) -> String {
        format!(
            "{}/.well-known/openid-configuration",
            self.issuer.trim_end_matches('/')
        )
    }
}
