//! Checking one JWT: shape, algorithm, signature, then claims.
//!
//! The header and payload are decoded by hand first so every refusal can say
//! precisely what is wrong; the signature itself is checked by ring (see
//! `keys.rs`). Nothing from an unverified payload but `iss` (to pick the
//! issuer) is used before the signature holds.

use super::keys::{KeyLookup, PublishedKey};
use super::problem::{unverified, TokenProblem};
use crate::human_ago;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};
use std::str::FromStr;
use std::sync::Arc;

/// Largest token accepted (real workload tokens are 1-4 KiB).
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// A JWT split and decoded, signature not yet checked.
pub(crate) struct UnverifiedToken<'a> {
    /// `header.payload`, the signed bytes.
    signed: &'a str,
    signature: &'a str,
    pub alg: Algorithm,
    pub kid: Option<String>,
    pub payload: Map<String, Value>,
}

/// Whether a credential has the shape of a JWS compact serialisation.
pub fn looks_like_jwt(credential: &str) -> bool {
    credential.starts_with("eyJ")
        && credential.split('.').count() == 3
        && credential
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn decode_part(part: &str, what: &str) -> Result<Map<String, Value>, TokenProblem> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenProblem::Malformed(format!("the {what} is not base64url")))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(TokenProblem::Malformed(format!(
            "the {what} is not a JSON object"
        ))),
    }
}

/// Splits and decodes a token, and refuses algorithms that are never acceptable.
pub(crate) fn parse(token: &str) -> Result<UnverifiedToken<'_>, TokenProblem> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenProblem::Malformed("longer than 16 KiB".into()));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenProblem::Malformed(
            "expected three dot-separated parts (JWS compact form); encrypted tokens (JWE) are not supported".into(),
        ));
    };
    let header = decode_part(h, "header")?;
    let alg = match header.get("alg").and_then(Value::as_str) {
        None => return Err(TokenProblem::Malformed("the header has no alg".into())),
        Some(a) if a.eq_ignore_ascii_case("none") => return Err(TokenProblem::Unsigned),
        Some(a @ ("HS256" | "HS384" | "HS512")) => return Err(TokenProblem::Hmac(a.into())),
        Some(a) => {
            Algorithm::from_str(a).map_err(|_| TokenProblem::UnknownAlgorithm(unverified(a)))?
        }
    };
    if header.contains_key("crit") {
        // RFC 7515 4.1.11: extensions we do not understand must be refused.
        return Err(TokenProblem::Malformed(
            "the header has critical extensions (crit), which gatehouse does not support".into(),
        ));
    }
    let kid = header
        .get("kid")
        .and_then(Value::as_str)
        .map(str::to_string);
    let payload = decode_part(p, "payload")?;
    Ok(UnverifiedToken {
        signed: &token[..h.len() + 1 + p.len()],
        signature,
        alg,
        kid,
        payload,
    })
}

impl UnverifiedToken<'_> {
    /// The `iss` claim, read before verification only to pick the issuer.
    pub(crate) fn iss(&self) -> Option<&str> {
        self.payload.get("iss").and_then(Value::as_str)
    }

    /// Checks the signature with the looked-up key.
    pub(crate) fn verify(self, lookup: KeyLookup) -> Result<Map<String, Value>, TokenProblem> {
        let key: Arc<PublishedKey> = match lookup {
            KeyLookup::Found(k) => k,
            KeyLookup::Unknown => {
                return Err(match self.kid {
                    Some(kid) => TokenProblem::UnknownKey(unverified(&kid)),
                    None => TokenProblem::NoFittingKey(format!("{:?}", self.alg)),
                })
            }
            KeyLookup::Unavailable(e) => return Err(TokenProblem::KeysUnavailable(e)),
            KeyLookup::Ambiguous(n) => return Err(TokenProblem::NoKid(n)),
        };
        let kid = key.kid.clone().unwrap_or_else(|| "(no kid)".into());
        if !key.kind.verifies(self.alg) {
            return Err(TokenProblem::KeyMismatch {
                kid,
                kind: key.kind.name(),
                alg: format!("{:?}", self.alg),
            });
        }
        if let Some(pinned) = key.alg {
            if pinned != self.alg {
                return Err(TokenProblem::KeyMismatch {
                    kid,
                    kind: key.kind.name(),
                    alg: format!("{:?}", self.alg),
                });
            }
        }
        let signature = URL_SAFE_NO_PAD
            .decode(self.signature)
            .map_err(|_| TokenProblem::Malformed("the signature is not base64url".into()))?;
        if key.verifies(self.alg, self.signed.as_bytes(), &signature) {
            Ok(self.payload)
        } else {
            Err(TokenProblem::BadSignature(kid))
        }
    }
}

fn numeric(claims: &Map<String, Value>, name: &'static str) -> Result<Option<i64>, TokenProblem> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_f64().map(|f| f as i64))
            .map(Some)
            .ok_or(TokenProblem::BadClaim {
                claim: name,
                reason: "not a number of seconds",
            }),
    }
}

/// Checks `exp` (required), `nbf` and `iat` against `now` (Unix seconds) with `skew`.
pub(crate) fn check_times(
    claims: &Map<String, Value>,
    now: i64,
    skew: i64,
) -> Result<i64, TokenProblem> {
    let exp = numeric(claims, "exp")?.ok_or(TokenProblem::MissingClaim("exp".into()))?;
    if now > exp + skew {
        return Err(TokenProblem::Expired(human_ago((now - exp) * 1000)));
    }
    if let Some(nbf) = numeric(claims, "nbf")? {
        if nbf > now + skew {
            return Err(TokenProblem::NotYetValid(human_ago((nbf - now) * 1000)));
        }
    }
    if let Some(iat) = numeric(claims, "iat")? {
        if iat > now + skew {
            return Err(TokenProblem::IssuedInFuture(human_ago((iat - now) * 1000)));
        }
        if iat > exp {
            return Err(TokenProblem::BadClaim {
                claim: "iat",
                reason: "later than exp",
            });
        }
    }
    Ok(exp)
}

/// Checks that the token's `aud` names one of `accepted`.
pub(crate) fn check_audience(
    claims: &Map<String, Value>,
    accepted: &[String],
) -> Result<(), TokenProblem> {
    let named: Vec<&str> = match claims.get("aud") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if named.iter().any(|a| accepted.iter().any(|x| x == a)) {
        return Ok(());
    }
    Err(TokenProblem::Audience {
        expected: accepted.join(", "),
        got: if named.is_empty() {
            "none".into()
        } else {
            named.join(", ")
        },
    })
}
