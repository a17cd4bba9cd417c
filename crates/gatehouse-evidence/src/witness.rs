//! Witnesses: copies of the signed checkpoints kept where whoever can edit
//! the store cannot. A witness copy is what makes a cut tail detectable.

use async_trait::async_trait;
use std::io::Write as _;
use std::path::PathBuf;

/// Somewhere checkpoints are published to.
#[async_trait]
pub trait Witness: Send + Sync + 'static {
    /// A name for logs and reports.
    fn name(&self) -> String;
    /// Publishes one signed checkpoint note.
    async fn publish(&self, note: &str) -> Result<(), String>;
}

/// An append-only file: each checkpoint note is appended and synced.
pub struct FileWitness {
    path: PathBuf,
}

impl FileWitness {
    /// A witness appending to `path` (created if missing).
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }
}

#[async_trait]
impl Witness for FileWitness {
    fn name(&self) -> String {
        format!("file {}", self.path.display())
    }

    async fn publish(&self, note: &str) -> Result<(), String> {
        let path = self.path.clone();
        let mut text = String::with_capacity(note.len() + 1);
        text.push_str(note);
        text.push('\n');
        tokio::task::spawn_blocking(move || {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?;
            f.write_all(text.as_bytes())?;
            f.sync_data()
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("{}: {e}", self.path.display()))
    }
}
