//! Certificates: the self-signed gateway certificate used when `[tls]` is
//! absent, and a small CA for demos and tests.

use anyhow::{Context, Result};
use rcgen::{BasicConstraints, Certificate, CertificateParams, DnType, IsCa, KeyPair};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A certificate and its key, PEM encoded.
pub struct PemPair {
    /// Certificate.
    pub cert_pem: String,
    /// Private key.
    pub key_pem: String,
}

/// A certificate authority that can sign leaf certificates.
pub struct TestCa {
    cert: Certificate,
    key: KeyPair,
}

impl TestCa {
    /// A new CA named `name`.
    pub fn new(name: &str) -> Result<Self> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key)?;
        Ok(Self { cert, key })
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> String {
        self.cert.pem()
    }

    /// A leaf certificate for `names` (DNS names or IP addresses).
    pub fn leaf(&self, names: &[&str]) -> Result<PemPair> {
        let key = KeyPair::generate()?;
        let params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())?;
        let cert = params.signed_by(&key, &self.cert, &self.key)?;
        Ok(PemPair {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// A self-signed certificate for the local host names.
pub fn self_signed(names: &[&str]) -> Result<PemPair> {
    let key = KeyPair::generate()?;
    let mut params =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())?;
    params
        .distinguished_name
        .push(DnType::CommonName, "Gatehouse self-signed certificate");
    let cert = params.self_signed(&key)?;
    Ok(PemPair {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// Returns the paths of the gateway's self-signed certificate in
/// `data_dir/tls/`, generating it on first use.
pub fn ensure_self_signed(data_dir: &Path) -> Result<(PathBuf, PathBuf)> {
    let dir = data_dir.join("tls");
    let cert = dir.join("gateway.pem");
    let key = dir.join("gateway.key");
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let pair = self_signed(&["localhost", "127.0.0.1", "::1"])?;
    write_private(&key, pair.key_pem.as_bytes())?;
    std::fs::write(&cert, pair.cert_pem).with_context(|| format!("writing {}", cert.display()))?;
    tracing::info!(cert = %cert.display(), "generated a self-signed TLS certificate (configure [tls] to use your own)");
    Ok((cert, key))
}

/// Writes `contents` to a new file readable only by its owner.
pub fn write_private(path: &Path, contents: &[u8]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(contents)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
