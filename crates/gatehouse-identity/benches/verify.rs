//! What checking a credential costs at login: an OIDC token (RS256, ES256)
//! with its keys held, and a malformed token refused before any crypto.

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use criterion::{criterion_group, criterion_main, Criterion};
use gatehouse_core::Timestamp;
use gatehouse_identity::oidc::{IssuerSettings, IssuerSpec, KeyFetcher, OidcVerifier};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;

struct Keys(Value);

#[async_trait]
impl KeyFetcher for Keys {
    async fn fetch(&self, _: &IssuerSettings) -> Result<Value, String> {
        Ok(self.0.clone())
    }
}

fn b64(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

fn bench(c: &mut Criterion) {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::traits::PublicKeyParts;
    let rsa = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("rsa");
    let rsa_enc = EncodingKey::from_rsa_der(rsa.to_pkcs1_der().expect("der").as_bytes());
    let ec = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("ec");
    let ec_enc = EncodingKey::from_ec_der(&ec.serialize_der());
    let raw = ec.public_key_raw();
    let jwks = json!({"keys": [
        {"kty": "RSA", "kid": "rs", "n": b64(&rsa.n().to_bytes_be()), "e": b64(&rsa.e().to_bytes_be())},
        {"kty": "EC", "kid": "es", "crv": "P-256", "x": b64(&raw[1..33]), "y": b64(&raw[33..])},
    ]});
    let spec: IssuerSpec = serde_json::from_value(json!({
        "name": "github", "preset": "github", "audience": "https://github.com/octo-org"
    }))
    .expect("spec");
    let settings = spec.resolve(&|p| PathBuf::from(p)).expect("settings");
    let fetcher: Arc<dyn KeyFetcher> = Arc::new(Keys(jwks));
    let verifier = OidcVerifier::new(vec![(settings, fetcher)]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(verifier.refresh_all());
    let now = Timestamp::now().unix_millis() / 1000;
    // A GitHub Actions token as GitHub shapes it (about 1.2 KiB signed).
    let claims = json!({
        "jti": "example-id", "sub": "repo:octo-org/octo-repo:environment:prod",
        "environment": "prod", "aud": "https://github.com/octo-org", "ref": "refs/heads/main",
        "sha": "example-sha", "repository": "octo-org/octo-repo", "repository_owner": "octo-org",
        "actor_id": "12", "repository_visibility": "private", "repository_id": "74",
        "repository_owner_id": "65", "run_id": "example-run-id", "run_number": "10",
        "run_attempt": "2", "runner_environment": "github-hosted", "actor": "octocat",
        "workflow": "example-workflow", "event_name": "workflow_dispatch", "ref_type": "branch",
        "job_workflow_ref": "octo-org/octo-automation/.github/workflows/oidc.yml@refs/heads/main",
        "iss": "https://token.actions.githubusercontent.com",
        "nbf": now, "exp": now + 3600, "iat": now
    });
    let sign = |alg: Algorithm, kid: &str, key: &EncodingKey| {
        let mut h = Header::new(alg);
        h.kid = Some(kid.into());
        jsonwebtoken::encode(&h, &claims, key).expect("sign")
    };
    let rs256 = sign(Algorithm::RS256, "rs", &rsa_enc);
    let es256 = sign(Algorithm::ES256, "es", &ec_enc);
    let mut g = c.benchmark_group("oidc_verify");
    for (name, token) in [("rs256_github", &rs256), ("es256_github", &es256)] {
        assert!(rt
            .block_on(verifier.verify(token, Timestamp::now()))
            .is_ok());
        g.bench_function(name, |b| {
            b.iter(|| rt.block_on(verifier.verify(token, Timestamp::now())))
        });
    }
    g.bench_function("refused_alg_none", |b| {
        let none = format!(
            "{}.{}.",
            b64(br#"{"alg":"none"}"#),
            b64(claims.to_string().as_bytes())
        );
        b.iter(|| rt.block_on(verifier.verify(&none, Timestamp::now())))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
