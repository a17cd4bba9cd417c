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

/// How much of a witness file's end is read to find its newest note or a
/// torn write (notes are a few hundred bytes).
const TAIL: u64 = 64 * 1024;

impl FileWitness {
    /// A witness appending to `path` (created if missing).
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }

    /// The end of the file (up to 64 KiB): where it starts, its text (a
    /// character cut short at the very end left out) and its length in
    /// bytes; none if the file does not exist yet.
    fn tail(&self) -> std::io::Result<Option<(u64, String, usize)>> {
        use std::io::{Read as _, Seek as _, SeekFrom};
        let mut f = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let len = f.metadata()?.len();
        let start = len.saturating_sub(TAIL);
        f.seek(SeekFrom::Start(start))?;
        let mut bytes = Vec::with_capacity((len - start) as usize);
        f.read_to_end(&mut bytes)?;
        // From a line's start, so offsets are the file's.
        let skip = if start == 0 {
            0
        } else {
            bytes
                .iter()
                .position(|&b| b == b'\n')
                .map_or(bytes.len(), |i| i + 1)
        };
        let bytes = bytes.split_off(skip);
        let raw = bytes.len();
        let text = whole_utf8(bytes).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{} is not a witness file (not UTF-8)", self.path.display()),
            )
        })?;
        Ok(Some((start + skip as u64, text, raw)))
    }

    /// Cuts a torn last note (a crash while one was appended) off the file,
    /// so the next note starts on a line of its own: the bytes cut.
    pub fn repair(&self) -> std::io::Result<u64> {
        let Some((start, tail, raw)) = self.tail()? else {
            return Ok(0);
        };
        let end = crate::note::whole_notes_end(&tail);
        if end == raw {
            return Ok(0);
        }
        let f = std::fs::OpenOptions::new().write(true).open(&self.path)?;
        f.set_len(start + end as u64)?;
        f.sync_data()?;
        Ok((raw - end) as u64)
    }

    /// The last whole note in the file, if any.
    pub fn newest_note(&self) -> std::io::Result<Option<String>> {
        let Some((_, tail, _)) = self.tail()? else {
            return Ok(None);
        };
        let end = crate::note::whole_notes_end(&tail);
        Ok(crate::note::split_notes(&tail[..end]).pop())
    }
}

/// `bytes` as text, a character cut short at the very end (a torn write
/// inside the signature line's dash) left out; `None` if not UTF-8.
pub fn whole_utf8(mut bytes: Vec<u8>) -> Option<String> {
    match std::str::from_utf8(&bytes) {
        Ok(_) => {}
        Err(e) if e.error_len().is_none() => bytes.truncate(e.valid_up_to()),
        Err(_) => return None,
    }
    String::from_utf8(bytes).ok()
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
