//! Turning a verified token's claims into an [`Identity`].

use super::problem::TokenProblem;
use super::spec::IssuerSettings;
use gatehouse_core::{Actor, Delegation, Identity, IdentitySource, OidcSource};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Most groups kept from one token (Entra sends at most 200 before overage).
const MAX_GROUPS: usize = 256;
/// Deepest RFC 8693 actor chain followed.
const MAX_ACTORS: usize = 8;
/// Longest attribute value kept.
const MAX_VALUE: usize = 1024;

/// Whether a value may become a subject, group or attribute: printable,
/// bounded, so records and policies never carry control characters.
fn printable(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && !s.chars().any(char::is_control)
}

/// A scalar claim as text; numbers and booleans as JSON writes them.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The value at a claim path (nested object names).
fn lookup<'a>(claims: &'a Map<String, Value>, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let mut v = claims.get(first)?;
    for p in rest {
        v = v.as_object()?.get(p)?;
    }
    Some(v)
}

fn first_string(claims: &Map<String, Value>, names: &[String]) -> Option<String> {
    names
        .iter()
        .find_map(|n| claims.get(n).and_then(scalar))
        .filter(|s| printable(s, 256))
}

fn actors(claims: &Map<String, Value>) -> Vec<Actor> {
    let mut out = Vec::new();
    let mut cur = claims.get("act");
    while let Some(Value::Object(act)) = cur {
        if out.len() == MAX_ACTORS {
            break;
        }
        let Some(sub) = act
            .get("sub")
            .and_then(scalar)
            .filter(|s| printable(s, 256))
        else {
            break;
        };
        out.push(Actor {
            sub,
            iss: act.get("iss").and_then(Value::as_str).map(str::to_string),
        });
        cur = act.get("act");
    }
    out
}

/// Builds the identity a verified token describes.
pub(crate) fn identity(
    issuer: &IssuerSettings,
    iss: &str,
    claims: &Map<String, Value>,
    expires_at: i64,
) -> Result<Identity, TokenProblem> {
    for r in &issuer.required_claims {
        if !claims.contains_key(r) {
            return Err(TokenProblem::MissingClaim(r.clone()));
        }
    }
    if let Some(t) = &issuer.tenant {
        if claims.get("tid").and_then(Value::as_str) != Some(t.as_str()) {
            return Err(TokenProblem::Tenant(t.clone()));
        }
    }
    let sub = match claims.get(&issuer.subject_claim) {
        None => return Err(TokenProblem::MissingClaim(issuer.subject_claim.clone())),
        Some(v) => scalar(v)
            .filter(|s| printable(s, 256))
            .ok_or_else(|| TokenProblem::BadSubject(issuer.subject_claim.clone()))?,
    };
    let mut groups: Vec<String> = issuer.static_groups.clone();
    for c in &issuer.groups_claims {
        let values: Vec<&Value> = match claims.get(c) {
            Some(Value::Array(a)) => a.iter().collect(),
            Some(v) => vec![v],
            None => Vec::new(),
        };
        for v in values {
            if let Some(g) = scalar(v).filter(|g| printable(g, 256)) {
                let g = format!("{}/{g}", issuer.name);
                if groups.len() < MAX_GROUPS && !groups.contains(&g) {
                    groups.push(g);
                }
            }
        }
    }
    let mut attrs = BTreeMap::new();
    for (tag, path) in &issuer.claims {
        let text = match lookup(claims, path) {
            Some(Value::Array(items)) => {
                let parts: Vec<String> = items.iter().filter_map(scalar).collect();
                (!parts.is_empty()).then(|| parts.join(","))
            }
            Some(v) => scalar(v),
            None => None,
        };
        if let Some(t) = text.filter(|t| printable(t, MAX_VALUE)) {
            attrs.insert(tag.clone(), t);
        }
    }
    let actors = actors(claims);
    let on_behalf_of = issuer
        .on_behalf_of_claim
        .as_ref()
        .and_then(|c| claims.get(c).and_then(scalar))
        .filter(|s| printable(s, 256));
    let delegation = (!actors.is_empty() || on_behalf_of.is_some()).then_some(Delegation {
        actors,
        on_behalf_of,
    });
    Ok(Identity {
        subject: format!("{}/{sub}", issuer.name),
        groups,
        source: IdentitySource::Oidc(Box::new(OidcSource {
            issuer: issuer.name.clone(),
            iss: iss.to_string(),
            sub,
            client_id: first_string(claims, &issuer.client_id_claims),
            token_id: first_string(claims, &issuer.token_id_claims),
            expires_at,
            claims: attrs,
            delegation,
        })),
    })
}
