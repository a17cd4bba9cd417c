//! The gateway's own SSH host key: made on first start in the data
//! directory (Ed25519, mode 0600) and kept, so callers can pin it.

use crate::SshError;
use russh::keys::ssh_key::private::{Ed25519Keypair, KeypairData};
use russh::keys::ssh_key::LineEnding;
use russh::keys::{HashAlg, PrivateKey, PublicKey};
use std::io::Write;
use std::path::Path;

/// The host key's file name in the data directory.
pub const HOST_KEY_FILE: &str = "ssh_host_ed25519_key";

/// Reads the host key at `path`, or makes one there when there is none.
pub fn load_or_create_host_key(path: &Path) -> Result<PrivateKey, SshError> {
    load_or_create_key(path, "gatehouse host key")
}

/// Reads the Ed25519 key at `path`, or makes one there (mode 0600).
pub(crate) fn load_or_create_key(path: &Path, comment: &str) -> Result<PrivateKey, SshError> {
    match std::fs::read_to_string(path) {
        Ok(text) => PrivateKey::from_openssh(&text).map_err(|e| {
            SshError::Key(format!(
                "{}: not an OpenSSH private key: {e}",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(path, comment),
        Err(source) => Err(SshError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn create(path: &Path, comment: &str) -> Result<PrivateKey, SshError> {
    let mut seed = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut seed);
    let pair = Ed25519Keypair::from_seed(&seed);
    let key = PrivateKey::new(KeypairData::Ed25519(pair), comment)
        .map_err(|e| SshError::Key(format!("making a host key: {e}")))?;
    let text = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| SshError::Key(format!("encoding the host key: {e}")))?;
    let io = |source| SshError::Io {
        path: path.to_path_buf(),
        source,
    };
    // Written whole under a name of its own, then linked into place: a
    // reader never sees half a key, and when another process (the CLI's
    // `ssh host-key` beside a starting gateway) made one first, its key
    // is the one kept and read.
    let mut suffix = [0u8; 8];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut suffix);
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(format!(".{}.tmp", hex::encode(suffix)));
    let tmp = std::path::PathBuf::from(tmp_name);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = (|| {
        let mut file = options.open(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::hard_link(&tmp, path)
    })();
    let _ = std::fs::remove_file(&tmp);
    match written {
        Ok(()) => Ok(key),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            load_or_create_key(path, comment)
        }
        Err(source) => Err(io(source)),
    }
}

/// A key's SHA-256 fingerprint as OpenSSH prints it (`SHA256:…`).
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processes_making_the_key_at_once_all_end_with_the_same_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(HOST_KEY_FILE);
        let keys: Vec<PrivateKey> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| load_or_create_host_key(&path).unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(keys.iter().all(|k| k.public_key() == keys[0].public_key()));
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file is left");
    }

    #[test]
    fn a_host_key_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(HOST_KEY_FILE);
        let a = load_or_create_host_key(&path).unwrap();
        let b = load_or_create_host_key(&path).unwrap();
        assert_eq!(a.public_key(), b.public_key());
        assert!(fingerprint(a.public_key()).starts_with("SHA256:"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, "not a key").unwrap();
        let e = load_or_create_host_key(&path).unwrap_err().to_string();
        assert!(e.contains("not an OpenSSH private key"), "{e}");
    }
}
