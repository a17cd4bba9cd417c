//! Good defaults for the issuers workloads actually get tokens from.
//!
//! Each preset fills what its platform's documentation says its tokens carry;
//! anything set explicitly in `[[identity.oidc]]` wins.

use std::fmt;
use std::str::FromStr;

/// A platform whose tokens Gatehouse knows the shape of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    /// Microsoft Entra ID (Azure AD) v1 and v2 access tokens: managed
    /// identities, service principals, users.
    Entra,
    /// GitHub Actions OIDC tokens.
    Github,
    /// GitLab CI `id_tokens`.
    Gitlab,
    /// Kubernetes projected service account tokens.
    Kubernetes,
    /// Google-signed ID tokens (service accounts, Cloud Run, GCE metadata).
    Google,
    /// Any OIDC issuer: `sub`, `groups`, `azp`/`client_id`.
    Generic,
}

impl FromStr for Preset {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "entra" => Self::Entra,
            "github" => Self::Github,
            "gitlab" => Self::Gitlab,
            "kubernetes" => Self::Kubernetes,
            "google" => Self::Google,
            "generic" => Self::Generic,
            other => {
                return Err(format!(
                "unknown preset {other:?}; expected entra, github, gitlab, kubernetes, google or generic"
            ))
            }
        })
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Entra => "entra",
            Self::Github => "github",
            Self::Gitlab => "gitlab",
            Self::Kubernetes => "kubernetes",
            Self::Google => "google",
            Self::Generic => "generic",
        })
    }
}

/// What a preset fills in.
pub(crate) struct PresetDefaults {
    /// The discovery base and first accepted `iss`, when the platform has one
    /// fixed issuer (Entra derives it from the tenant).
    pub issuer: Option<&'static str>,
    pub subject_claim: &'static str,
    pub groups_claims: &'static [&'static str],
    pub client_id_claims: &'static [&'static str],
    pub token_id_claims: &'static [&'static str],
    /// Attribute name and claim path (`/` between nested names).
    pub claims: &'static [(&'static str, &'static str)],
    pub required_claims: &'static [&'static str],
}

const GITHUB_CLAIMS: &[(&str, &str)] = &[
    ("repository", "repository"),
    ("repository_id", "repository_id"),
    ("repository_owner", "repository_owner"),
    ("repository_owner_id", "repository_owner_id"),
    ("repository_visibility", "repository_visibility"),
    ("ref", "ref"),
    ("ref_type", "ref_type"),
    ("ref_protected", "ref_protected"),
    ("sha", "sha"),
    ("environment", "environment"),
    ("workflow", "workflow"),
    ("workflow_ref", "workflow_ref"),
    ("job_workflow_ref", "job_workflow_ref"),
    ("job_workflow_sha", "job_workflow_sha"),
    ("event_name", "event_name"),
    ("actor", "actor"),
    ("actor_id", "actor_id"),
    ("run_id", "run_id"),
    ("run_number", "run_number"),
    ("run_attempt", "run_attempt"),
    ("head_ref", "head_ref"),
    ("base_ref", "base_ref"),
    ("runner_environment", "runner_environment"),
    ("enterprise", "enterprise"),
];

const GITLAB_CLAIMS: &[(&str, &str)] = &[
    ("namespace_id", "namespace_id"),
    ("namespace_path", "namespace_path"),
    ("project_id", "project_id"),
    ("project_path", "project_path"),
    ("project_visibility", "project_visibility"),
    ("user_id", "user_id"),
    ("user_login", "user_login"),
    ("pipeline_id", "pipeline_id"),
    ("pipeline_source", "pipeline_source"),
    ("job_id", "job_id"),
    ("ref", "ref"),
    ("ref_type", "ref_type"),
    ("ref_path", "ref_path"),
    ("ref_protected", "ref_protected"),
    ("environment", "environment"),
    ("environment_protected", "environment_protected"),
    ("deployment_tier", "deployment_tier"),
    ("runner_id", "runner_id"),
    ("runner_environment", "runner_environment"),
    ("sha", "sha"),
    ("ci_config_ref_uri", "ci_config_ref_uri"),
];

const ENTRA_CLAIMS: &[(&str, &str)] = &[
    ("tid", "tid"),
    ("oid", "oid"),
    ("idtyp", "idtyp"),
    ("ver", "ver"),
    ("scp", "scp"),
    ("name", "name"),
    ("preferred_username", "preferred_username"),
    ("upn", "upn"),
    ("app_displayname", "app_displayname"),
    // A managed identity's Azure resource id.
    ("xms_mirid", "xms_mirid"),
];

const KUBERNETES_CLAIMS: &[(&str, &str)] = &[
    ("namespace", "kubernetes.io/namespace"),
    ("service_account", "kubernetes.io/serviceaccount/name"),
    ("service_account_uid", "kubernetes.io/serviceaccount/uid"),
    ("pod", "kubernetes.io/pod/name"),
    ("node", "kubernetes.io/node/name"),
];

const GOOGLE_CLAIMS: &[(&str, &str)] = &[
    ("email", "email"),
    ("email_verified", "email_verified"),
    ("hd", "hd"),
];

impl Preset {
    pub(crate) fn defaults(self) -> PresetDefaults {
        match self {
            Self::Entra => PresetDefaults {
                issuer: None,
                // `oid` is the object id of the service principal, managed
                // identity or user: stable across applications, unlike `sub`.
                subject_claim: "oid",
                groups_claims: &["roles", "groups"],
                client_id_claims: &["azp", "appid"],
                token_id_claims: &["uti", "jti"],
                claims: ENTRA_CLAIMS,
                required_claims: &["tid", "oid"],
            },
            Self::Github => PresetDefaults {
                issuer: Some("https://token.actions.githubusercontent.com"),
                subject_claim: "sub",
                groups_claims: &[],
                client_id_claims: &[],
                token_id_claims: &["jti"],
                claims: GITHUB_CLAIMS,
                required_claims: &["repository", "ref"],
            },
            Self::Gitlab => PresetDefaults {
                issuer: Some("https://gitlab.com"),
                subject_claim: "sub",
                groups_claims: &[],
                client_id_claims: &[],
                token_id_claims: &["jti"],
                claims: GITLAB_CLAIMS,
                required_claims: &["project_path"],
            },
            Self::Kubernetes => PresetDefaults {
                issuer: None,
                subject_claim: "sub",
                groups_claims: &[],
                client_id_claims: &[],
                token_id_claims: &["jti"],
                claims: KUBERNETES_CLAIMS,
                required_claims: &["kubernetes.io"],
            },
            Self::Google => PresetDefaults {
                issuer: Some("https://accounts.google.com"),
                subject_claim: "sub",
                groups_claims: &[],
                client_id_claims: &["azp"],
                token_id_claims: &["jti"],
                claims: GOOGLE_CLAIMS,
                required_claims: &[],
            },
            Self::Generic => PresetDefaults {
                issuer: None,
                subject_claim: "sub",
                groups_claims: &["groups"],
                client_id_claims: &["azp", "client_id"],
                token_id_claims: &["jti"],
                claims: &[],
                required_claims: &[],
            },
        }
    }
}
