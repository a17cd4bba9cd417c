//! What the gateway keeps in its data directory: the directory itself
//! (owner only), the masking hash key and the admin key.

use super::{ADMIN_KEY_FILE, MASKING_KEY_FILE};
use crate::certs;
use crate::config::GatewayConfig;
use anyhow::{Context, Result};
use gatehouse_api::AdminKey;
use gatehouse_mask::HashKey;
use std::path::Path;

pub(super) fn prepare_data_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).with_context(|| format!("creating data_dir {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("restricting data_dir {} to its owner", dir.display()))?;
    Ok(())
}

/// The key of the `hash` masking strategy: the configured file, else
/// `data_dir/masking.key`, generated on first start. Keeping it keeps hashed
/// values stable (and joinable) across restarts.
pub(super) fn masking_key(config: &GatewayConfig) -> Result<HashKey> {
    if let Some(f) = &config.masking_key_file {
        return crate::config::read_hash_key(f)
            .map_err(|e| anyhow::anyhow!("{}: masking.hash_key_file: {e}", config.file.display()));
    }
    let path = config.data_dir.join(MASKING_KEY_FILE);
    if path.exists() {
        return crate::config::read_hash_key(&path).map_err(anyhow::Error::msg);
    }
    let mut b = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
    certs::write_private(&path, format!("{}\n", hex::encode(b)).as_bytes())?;
    tracing::info!(path = %path.display(), "generated the masking hash key");
    Ok(HashKey::new(b))
}

pub(super) fn ensure_admin_key(dir: &Path) -> Result<AdminKey> {
    let path = dir.join(ADMIN_KEY_FILE);
    if path.exists() {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        return Ok(AdminKey::from_text(&text));
    }
    let text = AdminKey::generate_text();
    certs::write_private(&path, format!("{text}\n").as_bytes())?;
    tracing::info!(path = %path.display(), "generated the admin key");
    Ok(AdminKey::from_text(&text))
}
