//! What a `kubernetes` connection always masks, and the request headers it
//! sets so that masking can read every answer.
//!
//! - Secret values: every `data` and `stringData` entry of an answer about
//!   Secrets (an object, a list, a watch event, a Table row with its
//!   object), whatever the connection's detectors.
//! - The `kubectl.kubernetes.io/last-applied-configuration` annotation of
//!   any object: it repeats the object as last applied, a Secret's values
//!   and a Deployment's environment included. It is masked inside, as a
//!   document of its own (a Secret's values as above, the detectors'
//!   finds), and stays JSON: `kubectl apply` reads it to work out its
//!   patch.
//! - Answers come as JSON: protobuf and YAML are struck from `Accept`, so
//!   no answer comes in a form the gateway cannot mask.
//! - Impersonation is the gateway's: a caller's `Impersonate-*` header is
//!   refused, and with `impersonate = true` the gateway names the caller.

use crate::HttpMasking;
use gatehouse_core::Identity;
use gatehouse_mask::{
    ColumnRule, ColumnTarget, DetectorSpec, HashKey, JsonPath, MaskError, MaskingEngine, Strategy,
};
use http::{header, HeaderMap, HeaderValue};
use std::sync::Arc;

/// JSON paths of Secret values, in any answer about Secrets, and how each
/// is masked: `data` values stay base64 (typed clients decode them, and
/// refuse the answer otherwise), `stringData` values are plain text.
const SECRET_PATHS: &[(&str, &str, Strategy)] = &[
    ("$..data.*", "secret-data", Strategy::RedactBase64),
    ("$..stringData.*", "secret-data", Strategy::Redact),
];

/// The annotation that repeats an object as last applied.
const LAST_APPLIED: (&str, &str, Strategy) = (
    "$..annotations['kubectl.kubernetes.io/last-applied-configuration']",
    "last-applied-configuration",
    Strategy::JsonDocument,
);

fn rule((path, label, strategy): (&str, &str, Strategy)) -> Result<ColumnRule, MaskError> {
    Ok(ColumnRule {
        target: ColumnTarget::JsonPath(JsonPath::parse(path)?),
        strategy,
        label: label.to_string(),
    })
}

/// A kubernetes connection's masking: the connection's own detectors and
/// rules (from `[connection.masking]`, if any) with the built-in ones, in
/// two engines: one for every answer, one for answers about Secrets.
pub fn kube_masking(
    detectors: Vec<DetectorSpec>,
    rules: Vec<ColumnRule>,
    key: HashKey,
    exempt_groups: Vec<String>,
) -> Result<HttpMasking, MaskError> {
    // The secret detectors always (tokens, keys, passwords in an exec's
    // output or a TokenRequest's answer), as every record of a connection
    // without masking gets them.
    let mut detectors = detectors;
    for d in gatehouse_mask::BUILTIN.iter().filter(|d| d.secret) {
        if !detectors.iter().any(|x| x.name == d.name) {
            detectors.push(DetectorSpec::builtin(d, Some(Strategy::Redact)));
        }
    }
    // The built-in rules come first (the first rule that covers a value
    // masks it): an operator's rule cannot weaken them.
    let mut every = vec![rule(LAST_APPLIED)?];
    every.extend(rules.iter().cloned());
    let mut secrets = Vec::new();
    for p in SECRET_PATHS {
        secrets.push(rule(*p)?);
    }
    secrets.push(rule(LAST_APPLIED)?);
    secrets.extend(rules);
    Ok(HttpMasking {
        engine: Arc::new(MaskingEngine::new(detectors.clone(), every, key.clone())?),
        secrets: Some(Arc::new(MaskingEngine::new(detectors, secrets, key)?)),
        exempt_groups,
    })
}

/// Whether a media range of `Accept` names a form the gateway cannot mask.
fn unmaskable_form(range: &str) -> bool {
    let media = range.split(';').next().unwrap_or("").trim();
    media.contains("protobuf") || media.contains("yaml") || media.contains("cbor")
}

/// Strikes protobuf, YAML and CBOR from `Accept` (JSON is left, or asked
/// for when nothing else is).
pub(crate) fn json_only(headers: &mut HeaderMap) {
    let kept: Vec<String> = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|r| !r.is_empty() && !unmaskable_form(r))
        .map(str::to_string)
        .collect();
    let accept = if kept.is_empty() {
        "application/json".to_string()
    } else {
        kept.join(",")
    };
    headers.remove(header::ACCEPT);
    if let Ok(v) = HeaderValue::from_str(&accept) {
        headers.insert(header::ACCEPT, v);
    }
}

/// The first `Impersonate-*` header a caller sent, if any.
pub(crate) fn impersonation_asked(headers: &HeaderMap) -> Option<String> {
    headers
        .keys()
        .find(|n| n.as_str().starts_with("impersonate-"))
        .map(|n| n.as_str().to_string())
}

/// Names the caller to the API server: `Impersonate-User` is its subject,
/// one `Impersonate-Group` per group. A value that cannot be a header is
/// left out (the subject then cannot be impersonated: `Err`).
pub(crate) fn impersonate(headers: &mut HeaderMap, identity: &Identity) -> Result<(), String> {
    let user = HeaderValue::from_str(&identity.subject).map_err(|_| {
        format!(
            "the identity {:?} cannot be sent as Impersonate-User",
            identity.subject
        )
    })?;
    headers.insert("impersonate-user", user);
    for g in &identity.groups {
        if let Ok(v) = HeaderValue::from_str(g) {
            headers.append("impersonate-group", v);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_keeps_json_and_tables_only() {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static(
                "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
            ),
        );
        json_only(&mut h);
        assert_eq!(
            h[header::ACCEPT],
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
        );
        h.insert(header::ACCEPT, HeaderValue::from_static("application/yaml"));
        json_only(&mut h);
        assert_eq!(h[header::ACCEPT], "application/json");
        h.remove(header::ACCEPT);
        json_only(&mut h);
        assert_eq!(h[header::ACCEPT], "application/json");
    }

    #[test]
    fn the_caller_is_named_by_the_gateway() {
        let mut h = HeaderMap::new();
        h.insert(
            "Impersonate-Group",
            HeaderValue::from_static("system:masters"),
        );
        assert_eq!(
            impersonation_asked(&h).as_deref(),
            Some("impersonate-group")
        );
        let id =
            Identity::with_service_token("ci-deploy", vec!["ci".into(), "deployers".into()], "t");
        let mut h = HeaderMap::new();
        impersonate(&mut h, &id).unwrap();
        assert_eq!(h["impersonate-user"], "ci-deploy");
        let groups: Vec<_> = h.get_all("impersonate-group").iter().collect();
        assert_eq!(groups, ["ci", "deployers"]);
    }

    /// A whole document through an engine, as the response pipeline reads it.
    fn mask(engine: &MaskingEngine, doc: &str) -> serde_json::Value {
        let mut s = gatehouse_mask::JsonStream::new(1 << 20);
        let mut out = Vec::new();
        let mut scratch = gatehouse_mask::Scratch::default();
        let mut tally = engine.tally();
        s.feed(engine, doc.as_bytes(), &mut out, &mut scratch, &mut tally)
            .unwrap();
        s.finish(engine, &mut out, &mut scratch, &mut tally)
            .unwrap();
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn records_keep_the_secret_detectors_without_masking_configured() {
        let m = kube_masking(Vec::new(), Vec::new(), HashKey::new([0; 32]), Vec::new()).unwrap();
        let jwt = "token: eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJpc3MiOiJrdWJlcm5ldGVzIn0.c2lnbmF0dXJlc2lnbmF0dXJl";
        for e in [m.engine_for(false), m.engine_for(true)] {
            let masked = crate::answer::mask_for_record(e, jwt);
            assert!(masked.contains("[masked:jwt]"), "{masked}");
        }
    }

    #[test]
    fn secret_values_and_last_applied_are_masked() {
        let m = kube_masking(Vec::new(), Vec::new(), HashKey::new([0; 32]), Vec::new()).unwrap();
        let secrets = m.secrets.as_ref().unwrap();
        let applied = r#"{"apiVersion":"v1","kind":"Secret","data":{"password":"czNjcmV0"},"stringData":{"token":"t0k3n"}}"#;
        let doc = serde_json::json!({
            "kind": "SecretList",
            "items": [{
                "metadata": {"name": "db", "annotations": {
                    "kubectl.kubernetes.io/last-applied-configuration": applied,
                    "owner": "team-a",
                }},
                "data": {"password": "czNjcmV0"},
            }],
        });
        let got = mask(secrets, &doc.to_string());
        let item = &got["items"][0];
        assert_eq!(item["data"]["password"], "W21hc2tlZDpzZWNyZXQtZGF0YV0=");
        assert_eq!(item["metadata"]["annotations"]["owner"], "team-a");
        // The annotation is still a JSON document kubectl apply can read,
        // with its values masked inside.
        let inner: serde_json::Value = serde_json::from_str(
            item["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(inner["kind"], "Secret");
        assert_eq!(inner["data"]["password"], "W21hc2tlZDpzZWNyZXQtZGF0YV0=");
        assert_eq!(inner["stringData"]["token"], "[masked:secret-data]");
        // An operator's rule cannot weaken the built-in ones.
        let partial = ColumnRule {
            target: ColumnTarget::JsonPath(JsonPath::parse("$..data.*").unwrap()),
            strategy: Strategy::Partial(32),
            label: "config-data".into(),
        };
        let m2 =
            kube_masking(Vec::new(), vec![partial], HashKey::new([0; 32]), Vec::new()).unwrap();
        let got = mask(
            m2.secrets.as_ref().unwrap(),
            r#"{"data":{"password":"czNjcmV0cGFzc3dvcmQ="}}"#,
        );
        assert_eq!(got["data"]["password"], "W21hc2tlZDpzZWNyZXQtZGF0YV0=");
        // An annotation that is not a JSON object is redacted whole.
        let scalar = serde_json::json!({"metadata": {"annotations": {
            "kubectl.kubernetes.io/last-applied-configuration": "\"hunter2-db-password\"",
        }}});
        let got = mask(&m.engine, &scalar.to_string());
        assert_eq!(
            got["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"],
            "[masked:last-applied-configuration]"
        );
        // Nor one that is not JSON at all.
        let odd = serde_json::json!({"metadata": {"annotations": {
            "kubectl.kubernetes.io/last-applied-configuration": "not json {",
        }}});
        let got = mask(&m.engine, &odd.to_string());
        assert_eq!(
            got["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"],
            "[masked:last-applied-configuration]"
        );
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever an annotation holds (JSON of any shape or not), the
        /// masked answer is JSON, the annotation still a string, and a
        /// Secret's value inside it never shows.
        #[test]
        fn any_last_applied_annotation_masks_to_json(
            inner in prop_oneof![
                ".{0,80}",
                Just(r#"{"data":{"k":"czNjcmV0"}}"#.to_string()),
                // (A Secret's `data` is always a map: the API server refuses another shape.)
                Just(r#"{"data":{"b":"czNjcmV0"},"x":[1,{"data":{"a":"czNjcmV0"}}]}"#.to_string()),
                Just("[\"czNjcmV0\"]".to_string()),
            ],
        ) {
            // Compiled once: the detectors' regexes are costly to build.
            static MASKING: std::sync::OnceLock<HttpMasking> = std::sync::OnceLock::new();
            let m = MASKING.get_or_init(|| {
                kube_masking(Vec::new(), Vec::new(), HashKey::new([0; 32]), Vec::new()).unwrap()
            });
            let doc = serde_json::json!({"metadata": {"annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": inner,
            }}, "data": {"k": "czNjcmV0"}});
            let engine = m.secrets.as_ref().unwrap();
            let mut s = gatehouse_mask::JsonStream::new(1 << 20);
            let mut out = Vec::new();
            let mut scratch = gatehouse_mask::Scratch::default();
            let mut tally = engine.tally();
            s.feed(engine, doc.to_string().as_bytes(), &mut out, &mut scratch, &mut tally).unwrap();
            s.finish(engine, &mut out, &mut scratch, &mut tally).unwrap();
            let got: serde_json::Value = serde_json::from_slice(&out).unwrap();
            let annotation = &got["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"];
            prop_assert!(annotation.is_string());
            prop_assert!(!String::from_utf8_lossy(&out).contains("czNjcmV0"), "{}", String::from_utf8_lossy(&out));
        }
    }
}
