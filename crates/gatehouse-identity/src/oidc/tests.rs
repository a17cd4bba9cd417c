//! Token validation with keys generated here and a key source the test
//! controls (the HTTP fetcher is exercised end to end against a real OIDC
//! server in the gateway's tests).

use super::*;
use crate::AuthError;
use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use gatehouse_core::IdentitySource;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

const ISS: &str = "https://issuer.example";
const AUD: &str = "api://gatehouse";

/// A signing key and its public JWK.
struct TestKey {
    kid: String,
    alg: Algorithm,
    enc: EncodingKey,
    jwk: Value,
}

fn b64(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

fn rsa_key(kid: &str, alg: Algorithm) -> TestKey {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::traits::PublicKeyParts;
    let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("rsa key");
    let der = key.to_pkcs1_der().expect("der");
    TestKey {
        kid: kid.into(),
        alg,
        enc: EncodingKey::from_rsa_der(der.as_bytes()),
        jwk: json!({"kty": "RSA", "kid": kid, "use": "sig",
            "n": b64(&key.n().to_bytes_be()), "e": b64(&key.e().to_bytes_be())}),
    }
}

fn ec_key(kid: &str, alg: Algorithm) -> TestKey {
    let (rc, crv, len) = match alg {
        Algorithm::ES256 => (&rcgen::PKCS_ECDSA_P256_SHA256, "P-256", 32),
        _ => (&rcgen::PKCS_ECDSA_P384_SHA384, "P-384", 48),
    };
    let kp = rcgen::KeyPair::generate_for(rc).expect("ec key");
    let raw = kp.public_key_raw();
    // Uncompressed point: 0x04 || X || Y.
    let (x, y) = raw[1..].split_at(len);
    TestKey {
        kid: kid.into(),
        alg,
        enc: EncodingKey::from_ec_der(&kp.serialize_der()),
        jwk: json!({"kty": "EC", "kid": kid, "crv": crv, "x": b64(x), "y": b64(y)}),
    }
}

fn ed_key(kid: &str) -> TestKey {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("ed key");
    TestKey {
        kid: kid.into(),
        alg: Algorithm::EdDSA,
        enc: EncodingKey::from_ed_der(&kp.serialize_der()),
        jwk: json!({"kty": "OKP", "kid": kid, "crv": "Ed25519", "x": b64(kp.public_key_raw())}),
    }
}

fn sign(key: &TestKey, claims: &Value) -> String {
    let mut h = Header::new(key.alg);
    h.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&h, claims, &key.enc).expect("sign")
}

fn now() -> i64 {
    Timestamp::now().unix_millis() / 1000
}

fn claims(extra: Value) -> Value {
    let mut c = json!({"iss": ISS, "aud": AUD, "sub": "svc-1", "iat": now(), "exp": now() + 300});
    if let (Some(c), Value::Object(e)) = (c.as_object_mut(), extra) {
        for (k, v) in e {
            if v.is_null() {
                c.remove(&k);
            } else {
                c.insert(k, v);
            }
        }
    }
    c
}

/// A key source whose JWKS the test swaps, counting fetches; `down` fails them.
#[derive(Default)]
struct TestKeys {
    jwks: Mutex<Vec<Value>>,
    fetches: AtomicUsize,
    down: std::sync::atomic::AtomicBool,
}

impl TestKeys {
    fn publish(&self, keys: &[&TestKey]) {
        *self.jwks.lock().expect("lock") = keys.iter().map(|k| k.jwk.clone()).collect();
    }
    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl KeyFetcher for TestKeys {
    async fn fetch(&self, _: &IssuerSettings) -> Result<Value, String> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            return Err("GET https://issuer.example/jwks: connection refused".into());
        }
        Ok(json!({"keys": *self.jwks.lock().expect("lock")}))
    }
}

fn spec(toml_like: Value) -> IssuerSpec {
    let mut base = json!({"name": "test", "issuer": ISS, "audience": AUD});
    if let (Some(b), Value::Object(e)) = (base.as_object_mut(), toml_like) {
        b.extend(e);
    }
    serde_json::from_value(base).expect("spec")
}

fn settings(extra: Value) -> IssuerSettings {
    spec(extra)
        .resolve(&|p| PathBuf::from(p))
        .unwrap_or_else(|e| panic!("resolve: {e:?}"))
}

fn verifier(s: IssuerSettings, keys: &Arc<TestKeys>) -> OidcVerifier {
    let f: Arc<dyn KeyFetcher> = keys.clone();
    OidcVerifier::new(vec![(s, f)])
}

/// A verifier over one issuer (`extra` on top of the test issuer) that
/// publishes exactly `key`.
fn trusting(key: &TestKey, extra: Value) -> OidcVerifier {
    let keys = Arc::new(TestKeys::default());
    keys.publish(&[key]);
    verifier(settings(extra), &keys)
}

async fn refused(v: &OidcVerifier, token: &str) -> String {
    match v.verify(token, Timestamp::now()).await {
        Ok(i) => panic!("accepted: {:?}", i.identity()),
        Err(e) => e.to_string(),
    }
}

/// The identity `claims`, signed with `key`, gives; panics naming `what` if refused.
async fn identity_of(
    v: &OidcVerifier,
    key: &TestKey,
    claims: &Value,
    what: &str,
) -> gatehouse_core::Identity {
    v.verify(&sign(key, claims), Timestamp::now())
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"))
        .into_identity()
}

fn oidc(i: &gatehouse_core::Identity) -> &gatehouse_core::OidcSource {
    match &i.source {
        IdentitySource::Oidc(o) => o,
        other => panic!("not oidc: {other:?}"),
    }
}

#[tokio::test]
async fn every_asymmetric_algorithm_verifies_and_claims_map_to_the_identity() {
    let keys = Arc::new(TestKeys::default());
    let set = [
        rsa_key("rs", Algorithm::RS256),
        rsa_key("ps", Algorithm::PS384),
        ec_key("es256", Algorithm::ES256),
        ec_key("es384", Algorithm::ES384),
        ed_key("ed"),
    ];
    keys.publish(&set.iter().collect::<Vec<_>>());
    let v = verifier(
        settings(json!({"groups": ["ci"], "claims": ["team", "region=meta/region"]})),
        &keys,
    );
    for k in &set {
        let token = sign(
            k,
            &claims(
                json!({"groups": ["readers", "writers"], "azp": "app-1", "jti": "t-1",
                "team": "payments", "meta": {"region": "eu"}}),
            ),
        );
        let id = v
            .verify(&token, Timestamp::now())
            .await
            .unwrap_or_else(|e| panic!("{:?}: {e}", k.alg))
            .into_identity();
        assert_eq!(id.subject, "test/svc-1");
        assert_eq!(id.groups, vec!["ci", "test/readers", "test/writers"]);
        let o = oidc(&id);
        assert_eq!(o.client_id.as_deref(), Some("app-1"));
        assert_eq!(o.token_id.as_deref(), Some("t-1"));
        assert_eq!(o.iss, ISS);
        assert_eq!(o.claims.get("team").map(String::as_str), Some("payments"));
        assert_eq!(o.claims.get("region").map(String::as_str), Some("eu"));
    }
    assert_eq!(keys.fetches(), 1, "one fetch serves every key");
}

#[tokio::test]
async fn time_audience_issuer_and_claim_failures_say_what_is_wrong() {
    let k = rsa_key("k1", Algorithm::RS256);
    let v = trusting(&k, json!({"required_claims": ["repository"]}));
    let ok = claims(json!({"repository": "org/app"}));
    assert!(v.verify(&sign(&k, &ok), Timestamp::now()).await.is_ok());

    let cases: Vec<(Value, &str)> = vec![
        (json!({"exp": now() - 270}), "token expired 4m ago"),
        (json!({"exp": null}), "required claim exp is missing"),
        // Mid-unit values: a second passing before the check cannot change the text.
        (json!({"nbf": now() + 9000}), "not valid for another 2h"),
        (json!({"iat": now() + 5400}), "issued 1h in the future"),
        (
            json!({"aud": "api://other"}),
            "audience mismatch: expected api://gatehouse, token is for api://other",
        ),
        (
            json!({"aud": null}),
            "audience mismatch: expected api://gatehouse, token is for none",
        ),
        (
            json!({"repository": null}),
            "required claim repository is missing",
        ),
        (json!({"sub": null}), "required claim sub is missing"),
        (
            json!({"sub": "bad\nname"}),
            "subject claim sub is not usable",
        ),
        (
            json!({"iss": "https://evil.example"}),
            "issuer https://evil.example is not trusted",
        ),
        (json!({"iss": null}), "the token has no iss claim"),
        (json!({"exp": "tomorrow"}), "claim exp is invalid"),
    ];
    for (change, expected) in cases {
        let mut c = ok.clone();
        if let (Some(c), Value::Object(e)) = (c.as_object_mut(), change.clone()) {
            for (key, val) in e {
                if val.is_null() {
                    c.remove(&key);
                } else {
                    c.insert(key, val);
                }
            }
        }
        let msg = refused(&v, &sign(&k, &c)).await;
        assert!(msg.contains(expected), "{change}: {msg}");
        assert!(msg.starts_with("OIDC token refused"), "{msg}");
    }
    // Within the clock skew (60 s by default) an expired token still passes.
    let grace = claims(json!({"repository": "org/app", "iat": now() - 90, "exp": now() - 30}));
    assert!(v.verify(&sign(&k, &grace), Timestamp::now()).await.is_ok());
}

#[tokio::test]
async fn algorithm_and_key_attacks_are_refused() {
    let keys = Arc::new(TestKeys::default());
    let rsa = rsa_key("rsa", Algorithm::RS256);
    let ec = ec_key("ec", Algorithm::ES256);
    keys.publish(&[&rsa, &ec]);
    let v = verifier(settings(json!({"algorithms": ["RS256", "ES256"]})), &keys);
    let body = b64(claims(json!({})).to_string().as_bytes());

    // alg none, with and without a signature.
    let none = format!("{}.{body}.", b64(br#"{"alg":"none","typ":"JWT"}"#));
    assert!(refused(&v, &none).await.contains("alg none"));
    // HS256 "signed" with the RSA public key as the secret (the classic confusion).
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some("rsa".into());
    let n = rsa.jwk["n"].as_str().expect("n").to_string();
    let hs = jsonwebtoken::encode(
        &h,
        &claims(json!({})),
        &EncodingKey::from_secret(n.as_bytes()),
    )
    .expect("hs");
    assert!(refused(&v, &hs).await.contains("shared secret"));
    // An allowed algorithm with a key of another type: ES256 header naming the RSA key.
    let mut forged = TestKey {
        kid: "rsa".into(),
        ..ec_key("x", Algorithm::ES256)
    };
    forged.alg = Algorithm::ES256;
    let msg = refused(&v, &sign(&forged, &claims(json!({})))).await;
    assert!(
        msg.contains("is an RSA key, which cannot verify ES256"),
        "{msg}"
    );
    // Not on this issuer's allow-list.
    let ps = TestKey {
        alg: Algorithm::PS256,
        ..rsa_key("rsa", Algorithm::PS256)
    };
    let msg = refused(&v, &sign(&ps, &claims(json!({})))).await;
    assert!(msg.contains("algorithm PS256 is not allowed"), "{msg}");
    // Tampered payload.
    let good = sign(&rsa, &claims(json!({})));
    let parts: Vec<&str> = good.split('.').collect();
    let evil = b64(claims(json!({"sub": "admin"})).to_string().as_bytes());
    let tampered = format!("{}.{evil}.{}", parts[0], parts[2]);
    assert!(refused(&v, &tampered)
        .await
        .contains("signature does not verify with key \"rsa\""));
    // Signed by a key the issuer never published.
    let stranger = rsa_key("rsa", Algorithm::RS256);
    assert!(refused(&v, &sign(&stranger, &claims(json!({}))))
        .await
        .contains("signature does not verify"));
    // Garbage.
    assert!(refused(&v, "eyJ.not.jwt")
        .await
        .contains("not a well-formed JWT"));
    // What an unverified token says is echoed bounded and without control characters.
    let long = format!("https://evil.example/{}\n", "x".repeat(5000));
    let msg = refused(&v, &sign(&rsa, &claims(json!({"iss": long})))).await;
    assert!(msg.len() < 400 && !msg.contains('\n'), "{msg}");

    // A key that pins its algorithm (JWK "alg") verifies nothing else.
    let mut pinned = rsa_key("pinned", Algorithm::PS256);
    pinned.jwk["alg"] = json!("RS256");
    let v = trusting(&pinned, json!({}));
    let msg = refused(&v, &sign(&pinned, &claims(json!({})))).await;
    assert!(msg.contains("cannot verify PS256"), "{msg}");
}

#[tokio::test(start_paused = true)]
async fn rotation_is_picked_up_and_unknown_kid_refreshes_are_rate_limited() {
    let old = rsa_key("old", Algorithm::RS256);
    let keys = Arc::new(TestKeys::default());
    keys.publish(&[&old]);
    let v = verifier(settings(json!({"min_refresh_interval": "30s"})), &keys);
    assert!(v
        .verify(&sign(&old, &claims(json!({}))), Timestamp::now())
        .await
        .is_ok());
    assert_eq!(keys.fetches(), 1);

    // The issuer rotates; a token with the new kid triggers one refresh...
    tokio::time::advance(Duration::from_secs(31)).await;
    let new = rsa_key("new", Algorithm::RS256);
    keys.publish(&[&new]);
    assert!(v
        .verify(&sign(&new, &claims(json!({}))), Timestamp::now())
        .await
        .is_ok());
    assert_eq!(keys.fetches(), 2);
    // ...and the retired key no longer verifies.
    let msg = refused(&v, &sign(&old, &claims(json!({})))).await;
    assert!(msg.contains("signing key \"old\" is not among"), "{msg}");

    // A flood of made-up kids within the interval costs at most that one fetch.
    for i in 0..50 {
        let bogus = TestKey {
            kid: format!("bogus-{i}"),
            ..rsa_key_cached()
        };
        let _ = refused(&v, &sign(&bogus, &claims(json!({})))).await;
    }
    assert_eq!(keys.fetches(), 2, "rate limit held");
    tokio::time::advance(Duration::from_secs(31)).await;
    let _ = refused(&v, &sign(&old, &claims(json!({})))).await;
    assert_eq!(keys.fetches(), 3, "one refresh after the interval");
}

/// One RSA key reused where only the kid matters (keygen is slow).
fn rsa_key_cached() -> TestKey {
    static DER: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let der = DER.get_or_init(|| {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("rsa");
        key.to_pkcs1_der().expect("der").as_bytes().to_vec()
    });
    TestKey {
        kid: String::new(),
        alg: Algorithm::RS256,
        enc: EncodingKey::from_rsa_der(der),
        jwk: Value::Null,
    }
}

#[tokio::test]
async fn issuer_down_fails_closed_without_keys_and_keeps_working_with_them() {
    let keys = Arc::new(TestKeys::default());
    let k = ec_key("k", Algorithm::ES256);
    keys.publish(&[&k]);
    keys.down.store(true, Ordering::SeqCst);
    let v = verifier(settings(json!({"min_refresh_interval": "1s"})), &keys);
    let token = sign(&k, &claims(json!({})));
    let msg = refused(&v, &token).await;
    assert!(
        msg.contains("signing keys are unavailable") && msg.contains("connection refused"),
        "{msg}"
    );
    keys.down.store(false, Ordering::SeqCst);
    v.refresh_all().await;
    assert!(v.verify(&token, Timestamp::now()).await.is_ok());
    keys.down.store(true, Ordering::SeqCst);
    let status = v.refresh_all().await;
    assert_eq!(status[0].keys, 1);
    assert!(status[0].last_error.is_some());
    assert!(
        v.verify(&token, Timestamp::now()).await.is_ok(),
        "cached keys keep valid tokens working"
    );
}

#[tokio::test]
async fn credential_kind_is_detected_and_jwts_without_issuers_are_refused() {
    assert_eq!(
        CredentialKind::of(&format!(
            "gatehouse_st_{}_{}",
            "a".repeat(16),
            "b".repeat(64)
        )),
        CredentialKind::ServiceToken
    );
    let k = ed_key("e");
    let token = sign(&k, &claims(json!({})));
    assert_eq!(CredentialKind::of(&token), CredentialKind::Jwt);
    assert_eq!(CredentialKind::of("hunter2"), CredentialKind::Unknown);
    assert!(matches!(
        AuthError::OidcNotConfigured.to_string().as_str(),
        s if s.contains("[[identity.oidc]]")
    ));
}

use crate::CredentialKind;

// ---- presets, with tokens shaped as each platform documents them ----

#[tokio::test]
async fn entra_v2_and_v1_tokens_map_app_roles_groups_and_pin_the_tenant() {
    let tid = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    let keys = Arc::new(TestKeys::default());
    let k = rsa_key("nOo3ZDrODXEK1jKWhXslHR_KXEg", Algorithm::RS256);
    keys.publish(&[&k]);
    let s = settings(json!({"name": "entra", "preset": "entra", "tenant": tid,
        "issuer": null, "audience": ["api://gatehouse", "6e74172b-be56-4843-9ff4-e66a39bb12e3"]}));
    assert_eq!(
        s.accepted_issuers,
        vec![
            format!("https://login.microsoftonline.com/{tid}/v2.0"),
            format!("https://sts.windows.net/{tid}/")
        ]
    );
    let v = verifier(s, &keys);
    // A v2 app-only token for a managed identity (Microsoft identity platform docs).
    let v2 = json!({
        "aud": "api://gatehouse",
        "iss": format!("https://login.microsoftonline.com/{tid}/v2.0"),
        "iat": now() - 60, "nbf": now() - 60, "exp": now() + 3600,
        "aio": "E2ZgYJg...", "azp": "b6a7c1d4-1111-4e2e-9b5e-0c4f9a9c3f21", "azpacr": "2",
        "idtyp": "app", "oid": "5f4c2b7e-2a1d-4b8c-9f6e-3d2c1b0a9e8f",
        "rh": "0.AX0A...", "roles": ["Data.Reader", "Data.Writer"],
        "sub": "5f4c2b7e-2a1d-4b8c-9f6e-3d2c1b0a9e8f", "tid": tid,
        "uti": "kL8hVd0m2UqL3cQ0c1dVAA", "ver": "2.0",
        "xms_mirid": "/subscriptions/0000/resourcegroups/app/providers/Microsoft.ManagedIdentity/userAssignedIdentities/etl"
    });
    let id = identity_of(&v, &k, &v2, "v2").await;
    assert_eq!(id.subject, "entra/5f4c2b7e-2a1d-4b8c-9f6e-3d2c1b0a9e8f");
    assert_eq!(id.groups, vec!["entra/Data.Reader", "entra/Data.Writer"]);
    let o = oidc(&id);
    assert_eq!(
        o.client_id.as_deref(),
        Some("b6a7c1d4-1111-4e2e-9b5e-0c4f9a9c3f21")
    );
    assert_eq!(o.token_id.as_deref(), Some("kL8hVd0m2UqL3cQ0c1dVAA"));
    assert_eq!(o.claims["tid"], tid);
    assert_eq!(o.claims["idtyp"], "app");
    assert!(o.claims["xms_mirid"].ends_with("/etl"));

    // A v1 token: sts.windows.net issuer, appid instead of azp, groups by object id.
    let v1 = json!({
        "aud": "6e74172b-be56-4843-9ff4-e66a39bb12e3",
        "iss": format!("https://sts.windows.net/{tid}/"),
        "iat": now() - 60, "nbf": now() - 60, "exp": now() + 3600,
        "appid": "c44b4083-3bb0-49c1-b47d-974e53cbdf3c", "appidacr": "2",
        "groups": ["0e9fa2b4-7f41-4a3c-8b4e-b1d3b5f3a7c2"],
        "idp": format!("https://sts.windows.net/{tid}/"),
        "oid": "a9f6e5d4-0000-4000-8000-000000000001", "sub": "a9f6e5d4-0000-4000-8000-000000000001",
        "tid": tid, "ver": "1.0"
    });
    let id = identity_of(&v, &k, &v1, "v1").await;
    assert_eq!(
        oidc(&id).client_id.as_deref(),
        Some("c44b4083-3bb0-49c1-b47d-974e53cbdf3c")
    );
    assert_eq!(
        id.groups,
        vec!["entra/0e9fa2b4-7f41-4a3c-8b4e-b1d3b5f3a7c2"]
    );

    // Another tenant's token whose iss was made to look like ours: the tid pins it.
    let mut other = v2.clone();
    other["tid"] = json!("00000000-0000-0000-0000-000000000000");
    assert!(refused(&v, &sign(&k, &other))
        .await
        .contains("tenant mismatch"));
}

#[tokio::test]
async fn github_actions_token_exposes_repository_ref_and_environment() {
    let k = rsa_key("cc413527-173f-5a05-976e-9c52b1d7b431", Algorithm::RS256);
    let v = trusting(
        &k,
        json!({"name": "github", "preset": "github", "issuer": null,
            "audience": "https://github.com/octo-org", "groups": ["ci"]}),
    );
    // As GitHub's "About security hardening with OpenID Connect" shows it.
    let token = json!({
        "jti": "example-id", "sub": "repo:octo-org/octo-repo:environment:prod",
        "environment": "prod", "aud": "https://github.com/octo-org",
        "ref": "refs/heads/main", "sha": "example-sha", "repository": "octo-org/octo-repo",
        "repository_owner": "octo-org", "actor_id": "12", "repository_visibility": "private",
        "repository_id": "74", "repository_owner_id": "65", "run_id": "example-run-id",
        "run_number": "10", "run_attempt": "2", "runner_environment": "github-hosted",
        "actor": "octocat", "workflow": "example-workflow", "head_ref": "", "base_ref": "",
        "event_name": "workflow_dispatch", "ref_type": "branch",
        "job_workflow_ref": "octo-org/octo-automation/.github/workflows/oidc.yml@refs/heads/main",
        "iss": "https://token.actions.githubusercontent.com",
        "nbf": now() - 5, "exp": now() + 300, "iat": now() - 5
    });
    let id = identity_of(&v, &k, &token, "github").await;
    assert_eq!(
        id.subject,
        "github/repo:octo-org/octo-repo:environment:prod"
    );
    assert_eq!(id.groups, vec!["ci"]);
    let o = oidc(&id);
    assert_eq!(o.claims["repository"], "octo-org/octo-repo");
    assert_eq!(o.claims["ref"], "refs/heads/main");
    assert_eq!(o.claims["environment"], "prod");
    assert!(o.claims["job_workflow_ref"].contains("oidc.yml"));
    assert!(
        !o.claims.contains_key("head_ref"),
        "empty claims are not attributes"
    );
    assert_eq!(o.token_id.as_deref(), Some("example-id"));
    // The default GitHub audience of another organisation is refused.
    let mut other = token.clone();
    other["aud"] = json!("https://github.com/evil-org");
    assert!(refused(&v, &sign(&k, &other))
        .await
        .contains("audience mismatch"));
}

#[tokio::test]
async fn kubernetes_service_account_token_gives_namespace_and_account() {
    let keys = Arc::new(TestKeys::default());
    let k = rsa_key("qk3Tq6bZf1QeJ2vY", Algorithm::RS256);
    keys.publish(&[&k]);
    let iss = "https://oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE";
    let v = verifier(
        settings(
            json!({"name": "k8s", "preset": "kubernetes", "issuer": iss, "audience": "gatehouse"}),
        ),
        &keys,
    );
    // A projected service account token (TokenRequest API).
    let token = json!({
        "aud": ["gatehouse"], "exp": now() + 3600, "iat": now(), "nbf": now(), "iss": iss,
        "jti": "ea28ed49-2e11-4280-9ec5-bc3d1d84661a",
        "kubernetes.io": {
            "namespace": "payments",
            "node": {"name": "ip-10-0-1-2", "uid": "646e7c5e-32d6-4d42-9dbd-e504e6cbe6b1"},
            "pod": {"name": "etl-7d9f8b-xk2lp", "uid": "5e0bd49b-f040-43b0-99b7-22765a53f7f3"},
            "serviceaccount": {"name": "etl", "uid": "14ee3fa4-a7e2-420f-9f9a-dbc4507c3798"}
        },
        "sub": "system:serviceaccount:payments:etl"
    });
    let id = identity_of(&v, &k, &token, "k8s").await;
    assert_eq!(id.subject, "k8s/system:serviceaccount:payments:etl");
    let o = oidc(&id);
    assert_eq!(o.claims["namespace"], "payments");
    assert_eq!(o.claims["service_account"], "etl");
    assert_eq!(o.claims["pod"], "etl-7d9f8b-xk2lp");
    let mut legacy = token.clone();
    legacy.as_object_mut().expect("obj").remove("kubernetes.io");
    assert!(refused(&v, &sign(&k, &legacy))
        .await
        .contains("required claim kubernetes.io is missing"));
}

#[tokio::test]
async fn delegation_records_the_actor_chain_and_on_behalf_of() {
    let k = ec_key("k", Algorithm::ES256);
    let v = trusting(&k, json!({"on_behalf_of_claim": "obo"}));
    // RFC 8693 4.1: alice's rights, exercised by agent-7, which a scheduler called.
    let token = claims(json!({"sub": "alice",
        "act": {"sub": "agent-7", "act": {"sub": "scheduler", "iss": "https://other.example"}}}));
    let id = identity_of(&v, &k, &token, "act").await;
    let d = id.delegation().expect("delegation");
    assert_eq!(d.actor_chain(), "agent-7 > scheduler");
    assert_eq!(d.actors[1].iss.as_deref(), Some("https://other.example"));
    let token = claims(json!({"sub": "agent-7", "obo": "alice@example.com"}));
    let id = identity_of(&v, &k, &token, "obo").await;
    assert_eq!(
        id.delegation().and_then(|d| d.on_behalf_of.as_deref()),
        Some("alice@example.com")
    );
}

#[test]
fn bad_issuer_settings_are_refused_with_the_key_and_reason() {
    let bad = |extra: Value| -> Vec<(&'static str, String)> {
        spec(extra)
            .resolve(&|p| PathBuf::from(p))
            .expect_err("should be refused")
    };
    let has = |problems: Vec<(&'static str, String)>, key: &str, text: &str| {
        assert!(
            problems.iter().any(|(k, r)| *k == key && r.contains(text)),
            "{key}/{text}: {problems:?}"
        )
    };
    has(bad(json!({"algorithms": ["HS256"]})), "algorithms", "HMAC");
    has(
        bad(json!({"algorithms": ["none"]})),
        "algorithms",
        "unsigned",
    );
    has(
        bad(json!({"algorithms": ["XX1"]})),
        "algorithms",
        "not a JWS algorithm",
    );
    has(
        bad(json!({"issuer": "http://idp.example.com"})),
        "issuer",
        "plain http",
    );
    has(
        bad(json!({"jwks_uri": "https://user:secret@idp.example.com/keys"})),
        "jwks_uri",
        "user name or password",
    );
    has(
        bad(json!({"preset": "entra", "issuer": null})),
        "tenant",
        "missing",
    );
    has(bad(json!({"preset": "okta"})), "preset", "unknown preset");
    has(bad(json!({"audience": null})), "audience", "missing");
    has(bad(json!({"name": "a/b"})), "name", "letters");
    has(bad(json!({"clock_skew": "1h"})), "clock_skew", "10 minutes");
    has(
        bad(json!({"min_refresh_interval": "10ms"})),
        "min_refresh_interval",
        "hammer",
    );
    has(
        bad(json!({"ca_file": "/nonexistent/ca.pem"})),
        "ca_file",
        "cannot read",
    );
    has(bad(json!({"claims": ["a=/b"]})), "claims", "nested path");
    has(
        bad(json!({"preset": "github", "tenant": "x"})),
        "tenant",
        "only the entra",
    );
    // The issuer is kept as written (iss is compared exactly); discovery lives beside it.
    let s = settings(json!({"issuer": "https://tenant.auth0.com/"}));
    assert_eq!(s.accepted_issuers, vec!["https://tenant.auth0.com/"]);
    assert_eq!(
        s.discovery_url(),
        "https://tenant.auth0.com/.well-known/openid-configuration"
    );
    // Plain http is fine for a loopback test issuer.
    assert!(spec(json!({"issuer": "http://127.0.0.1:9999"}))
        .resolve(&|p| PathBuf::from(p))
        .is_ok());
}

#[tokio::test]
async fn gitlab_ci_id_token_exposes_project_ref_and_protection() {
    let k = rsa_key(
        "4i3sFE7sxqNPOT7FdvcGA1ZVGGI_r-tsDXnEuYT4ZqE",
        Algorithm::RS256,
    );
    let v = trusting(
        &k,
        json!({"name": "gitlab", "preset": "gitlab", "issuer": null, "audience": "gatehouse"}),
    );
    // As GitLab's "OpenID Connect (OIDC) Authentication Using ID Tokens" shows it.
    let token = json!({
        "namespace_id": "72", "namespace_path": "my-group", "project_id": "20",
        "project_path": "my-group/my-project", "user_id": "1", "user_login": "sample-user",
        "user_email": "sample-user@example.com", "user_identities": [{"provider": "github", "extern_uid": "2435223452345"}],
        "pipeline_id": "574", "pipeline_source": "push", "job_id": "302", "ref": "feature-branch-1",
        "ref_type": "branch", "ref_path": "refs/heads/feature-branch-1", "ref_protected": "false",
        "environment": "test-environment2", "environment_protected": "false",
        "deployment_tier": "testing", "environment_action": "start", "runner_id": 1,
        "runner_environment": "self-hosted", "sha": "714a629c0b401fdce83e847fc9589983fc6f46bc",
        "project_visibility": "public", "ci_config_ref_uri": "gitlab.example.com/my-group/my-project//.gitlab-ci.yml@refs/heads/main",
        "ci_config_sha": "714a629c0b401fdce83e847fc9589983fc6f46bc",
        "jti": "235b3a54-b797-45c7-ae9a-f72d7bc6ef5b", "iss": "https://gitlab.com",
        "iat": now(), "nbf": now() - 5, "exp": now() + 300,
        "sub": "project_path:my-group/my-project:ref_type:branch:ref:feature-branch-1",
        "aud": "gatehouse"
    });
    let id = identity_of(&v, &k, &token, "gitlab").await;
    assert_eq!(
        id.subject,
        "gitlab/project_path:my-group/my-project:ref_type:branch:ref:feature-branch-1"
    );
    let o = oidc(&id);
    assert_eq!(o.claims["project_path"], "my-group/my-project");
    assert_eq!(o.claims["ref_protected"], "false");
    assert_eq!(o.claims["runner_id"], "1", "numbers become text");
    assert!(
        !o.claims.contains_key("user_email"),
        "only the preset's claims are copied"
    );
}
