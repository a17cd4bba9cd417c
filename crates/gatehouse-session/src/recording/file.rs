//! A recording's file, written as its stream goes: `<name>.part` while it
//! is made (what a crash leaves is there up to the crash), then synced and
//! renamed to `<name>`, with its SHA-256 and size for the evidence log.

use sha2::{Digest, Sha256};
use std::path::Path;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// A finished recording.
pub struct Written {
    /// The file's SHA-256, in hex.
    pub sha256: String,
    /// Its size.
    pub bytes: u64,
}

/// A recording's file being written by its own task.
pub struct RecordingFile {
    /// Where the recording's bytes go; a full channel slows the stream.
    pub sink: mpsc::Sender<Vec<u8>>,
    task: JoinHandle<Result<Written, String>>,
}

impl RecordingFile {
    /// Creates `dir/<name>.part` (it must not exist) and the task that
    /// writes it.
    pub async fn create(dir: &Path, name: &str) -> Result<Self, String> {
        let part = dir.join(format!("{name}.part"));
        let done = dir.join(name);
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&part)
            .await
            .map_err(|e| format!("creating {}: {e}", part.display()))?;
        let (sink, mut rx) = mpsc::channel::<Vec<u8>>(16);
        let task = tokio::spawn(async move {
            let mut out = tokio::io::BufWriter::new(file);
            let mut hash = Sha256::new();
            let mut bytes = 0u64;
            let failed = |e: std::io::Error| format!("writing {}: {e}", part.display());
            // On an error the receiver is dropped: every sender then fails,
            // and the relay cuts the stream.
            while let Some(chunk) = rx.recv().await {
                out.write_all(&chunk).await.map_err(failed)?;
                hash.update(&chunk);
                bytes += chunk.len() as u64;
            }
            out.flush().await.map_err(failed)?;
            out.get_ref().sync_all().await.map_err(failed)?;
            tokio::fs::rename(&part, &done)
                .await
                .map_err(|e| format!("renaming {} to {}: {e}", part.display(), done.display()))?;
            Ok(Written {
                sha256: hex::encode(hash.finalize()),
                bytes,
            })
        });
        Ok(Self { sink, task })
    }

    /// Ends `cast` in this file: the exit status (when the stream had one)
    /// as its last marker, what it still held written, the file whole.
    pub async fn keep(self, mut cast: super::Cast, exit: Option<i64>) -> Result<Written, String> {
        if let Some(code) = exit {
            cast.marker(&format!("exit {code}"));
        }
        self.close(cast.finish()).await
    }

    /// Writes the recording's last bytes and waits for the file to be whole.
    pub async fn close(self, tail: Vec<u8>) -> Result<Written, String> {
        let Self { sink, task } = self;
        if !tail.is_empty() {
            // A writer that failed says why below.
            let _ = sink.send(tail).await;
        }
        drop(sink);
        task.await
            .map_err(|e| format!("the recording's writer stopped: {e}"))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_recording_is_renamed_whole_with_its_hash() {
        let dir = tempfile::tempdir().unwrap();
        let f = RecordingFile::create(dir.path(), "s-1.cast").await.unwrap();
        assert!(dir.path().join("s-1.cast.part").exists());
        f.sink.send(b"header\n".to_vec()).await.unwrap();
        let w = f.close(b"[1,\"o\",\"x\"]\n".to_vec()).await.unwrap();
        let text = std::fs::read(dir.path().join("s-1.cast")).unwrap();
        assert_eq!(text, b"header\n[1,\"o\",\"x\"]\n");
        assert_eq!(w.bytes, text.len() as u64);
        assert_eq!(w.sha256, hex::encode(Sha256::digest(&text)));
        assert!(!dir.path().join("s-1.cast.part").exists());
        // A name taken is refused, never overwritten.
        std::fs::write(dir.path().join("s-2.cast.part"), b"x").unwrap();
        assert!(RecordingFile::create(dir.path(), "s-2.cast").await.is_err());
    }
}
