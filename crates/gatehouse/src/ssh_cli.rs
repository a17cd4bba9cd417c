//! `gatehouse ssh host-key`: the gateway's SSH host key as callers pin it.

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
