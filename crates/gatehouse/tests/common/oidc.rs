//! A real OIDC server for the tests (the npm package oauth2-mock-server,
//! installed by scripts/setup into tests/oidc-issuer), issuing RS256
//! tokens through client credentials.

use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

/// An oauth2-mock-server process on a free port.
pub struct Issuer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    pub url: String,
    /// For an HTTPS issuer: the CA that signed its certificate, and its file.
    pub ca: Option<(String, std::path::PathBuf)>,
    _dir: tempfile::TempDir,
}

impl Issuer {
    /// A plain-HTTP issuer on loopback.
    pub fn start() -> Self {
        Self::launch(false)
    }

    /// An HTTPS issuer whose certificate a test CA signed.
    pub fn start_https() -> Self {
        Self::launch(true)
    }

    fn launch(https: bool) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc-issuer");
        assert!(
            dir.join("node_modules/oauth2-mock-server").is_dir(),
            "oauth2-mock-server is not installed: run `npm ci --prefix {}` (the README's set-up, done by .ci/run)",
            dir.display()
        );
        let mut cmd = Command::new("node");
        cmd.arg(dir.join("issuer.mjs")).arg("0");
        let ca = https.then(|| {
            let ca = gatehouse::certs::TestCa::new("issuer test CA").unwrap();
            let leaf = ca.leaf(&["localhost", "127.0.0.1"]).unwrap();
            let (cert, key, ca_file) = (
                tmp.path().join("cert.pem"),
                tmp.path().join("key.pem"),
                tmp.path().join("ca.pem"),
            );
            std::fs::write(&cert, leaf.cert_pem).unwrap();
            std::fs::write(&key, leaf.key_pem).unwrap();
            std::fs::write(&ca_file, ca.cert_pem()).unwrap();
            cmd.arg(cert).arg(key);
            (ca.cert_pem(), ca_file)
        });
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node (Node.js) must be installed for the OIDC tests");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let ready = read_json(&mut stdout);
        Self {
            child,
            stdin,
            stdout,
            url: ready["issuer"].as_str().unwrap().to_string(),
            ca,
            _dir: tmp,
        }
    }

    /// A client-credentials token for `client`, with `aud` and extra claims.
    pub fn token(&self, client: &str, aud: &str, claims: Value) -> String {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut http = reqwest::Client::builder();
            if let Some((pem, _)) = &self.ca {
                http = http
                    .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap());
            }
            let resp: Value = http
                .build()
                .unwrap()
                .post(format!("{}/token", self.url))
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", client),
                    ("aud", aud),
                    ("claims", &claims.to_string()),
                ])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            resp["access_token"].as_str().unwrap().to_string()
        })
    }

    /// Sets the claims of whoever signs in next with the authorization code
    /// flow (the mock's /authorize approves at once).
    pub fn person(&mut self, claims: Value) {
        writeln!(self.stdin, "person {claims}").unwrap();
        let answer = read_json(&mut self.stdout);
        assert_eq!(answer["person"], true, "{answer}");
    }

    /// Replaces the server's signing key; the old one is no longer published.
    pub fn rotate(&mut self) {
        writeln!(self.stdin, "rotate").unwrap();
        let answer = read_json(&mut self.stdout);
        assert_eq!(answer["rotated"], true, "{answer}");
    }
}

impl Drop for Issuer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_json(r: &mut BufReader<ChildStdout>) -> Value {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("issuer said {line:?}: {e}"))
}
