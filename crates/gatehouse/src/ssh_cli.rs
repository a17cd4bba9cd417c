//! `gatehouse ssh host-key`: the gateway's SSH host key as callers pin it;
//! `gatehouse ssh login`: a token exchanged for a short-lived certificate.

use anyhow::{Context, Result};
use std::path::Path;

/// The host key's public half, its fingerprint and a `known_hosts` line
/// for the SSH listener's address; the key is made in the data directory
/// if the gateway has not made it yet.
pub fn host_key(config_file: &Path, json: bool) -> Result<String> {
    let config =
        crate::config::RawConfig::parse(config_file).map_err(|e| anyhow::anyhow!("{e}"))?;
    let Some(listen) = config.ssh_listen() else {
        anyhow::bail!(
            "{}: listeners.ssh is not set: the gateway has no SSH listener (add ssh = \"127.0.0.1:2222\" to [listeners])",
            config_file.display()
        );
    };
    let dir = config.data_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(gatehouse_ssh::HOST_KEY_FILE);
    let key = gatehouse_ssh::load_or_create_host_key(&path)
        .with_context(|| format!("the SSH host key {}", path.display()))?;
    let public = key.public_key();
    let line = public.to_openssh().context("encoding the host key")?;
    // known_hosts names a non-default port as [host]:port.
    let host = match listen.rsplit_once(':') {
        Some((h, "22")) => h.to_string(),
        Some((h, p)) => format!("[{}]:{p}", h.trim_start_matches('[').trim_end_matches(']')),
        None => listen.to_string(),
    };
    let fingerprint = gatehouse_ssh::fingerprint(public);
    let known_hosts = format!("{host} {line}");
    if json {
        return Ok(format!(
            "{}\n",
            serde_json::json!({
                "public_key": line,
                "fingerprint": fingerprint,
                "known_hosts": known_hosts,
            })
        ));
    }
    Ok(format!(
        "{line}\n{fingerprint}\n\nFor callers' known_hosts:\n{known_hosts}\n"
    ))
}

/// Makes a fresh Ed25519 key at `key`, has the gateway certify it for the
/// client's token, and writes `key`, `key.pub` and `key-cert.pub`.
pub async fn login(client: &crate::admin::AdminClient, key: &Path, json: bool) -> Result<String> {
    use russh::keys::ssh_key::private::{Ed25519Keypair, KeypairData};
    use russh::keys::ssh_key::LineEnding;
    let mut seed = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut seed);
    let private = russh::keys::PrivateKey::new(
        KeypairData::Ed25519(Ed25519Keypair::from_seed(&seed)),
        "gatehouse ssh login",
    )
    .context("making a key")?;
    let public = private
        .public_key()
        .to_openssh()
        .context("encoding the key")?;
    let issued = client
        .ssh_certificate(&gatehouse_api::CertificateRequest {
            public_key: public.clone(),
        })
        .await?;
    let text = private
        .to_openssh(LineEnding::LF)
        .context("encoding the key")?;
    // Only a key this command made is replaced (whole: a stale certificate
    // never pairs with a new key); any other file is left alone.
    let existing = match std::fs::read(key) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => anyhow::bail!("{}: {e}: choose another --key", key.display()),
    };
    if let Some(existing) = existing {
        let ours = std::str::from_utf8(&existing)
            .ok()
            .and_then(|t| russh::keys::PrivateKey::from_openssh(t).ok())
            .is_some_and(|k| AsRef::<str>::as_ref(k.comment()) == "gatehouse ssh login");
        if !ours {
            anyhow::bail!(
                "{} exists and is not a key `gatehouse ssh login` made: choose another --key",
                key.display()
            );
        }
        std::fs::remove_file(key).with_context(|| format!("replacing {}", key.display()))?;
    }
    crate::certs::write_private(key, text.as_bytes())?;
    let with_suffix = |suffix: &str| {
        let mut name = key.as_os_str().to_owned();
        name.push(suffix);
        std::path::PathBuf::from(name)
    };
    let cert_file = with_suffix("-cert.pub");
    std::fs::write(with_suffix(".pub"), format!("{public}\n"))
        .with_context(|| format!("writing {}.pub", key.display()))?;
    std::fs::write(&cert_file, format!("{}\n", issued.certificate))
        .with_context(|| format!("writing {}", cert_file.display()))?;
    if json {
        return Ok(format!(
            "{}\n",
            serde_json::json!({
                "key": key.display().to_string(),
                "certificate_file": cert_file.display().to_string(),
                "principal": issued.principal,
                "serial": issued.serial,
                "valid_before": issued.valid_before,
            })
        ));
    }
    Ok(format!(
        "certificate for {} (serial {}) valid until {}\nwritten: {} and {}\nlog in with: ssh -i {} -p <ssh port> <connection>@<gateway>\n",
        issued.principal,
        issued.serial,
        issued.valid_before,
        key.display(),
        cert_file.display(),
        key.display()
    ))
}
