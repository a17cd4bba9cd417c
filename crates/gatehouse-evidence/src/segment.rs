//! Sealed segments: a stretch of the log moved out of the live store into
//! a file of its own, so the live store stays small and old evidence can be
//! kept on other storage.
//!
//! A segment file is text: a header line (JSON: its number, the entries it
//! holds, the signed checkpoint it starts from with the Merkle frontier at
//! that point, and the signed checkpoint that seals it), then one entry per
//! line, exactly as hashed (canonical JSON never holds a raw newline). A
//! segment checks on its own: the frontier matches the starting
//! checkpoint's root, and extended by the entries it gives the sealing
//! checkpoint's root; so each segment chains to the one before, and the
//! tree stays one tree across segments. Verification of the whole log
//! reads the segments in order, then the live store, as one stream.

use crate::entry::Entry;
use crate::merkle::{leaf_hash, Frontier, Hash};
use crate::note::Checkpoint;
use crate::EvidenceError;
use gatehouse_core::LogRow;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

/// The first line's `format`.
pub const SEGMENT_FORMAT: &str = "gatehouse-evidence-segment/v1";

/// A segment file's first line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentHeader {
    /// Always [`SEGMENT_FORMAT`].
    pub format: String,
    /// The segment's number, from 1.
    pub number: u64,
    /// Its first entry's sequence number.
    pub first: u64,
    /// How many entries it holds.
    pub count: u64,
    /// Where its first entry was stored in the live store (what findings in
    /// it are numbered from).
    pub first_position: i64,
    /// The signed checkpoint of size `first` (none for the first segment).
    pub start_checkpoint: Option<String>,
    /// The Merkle frontier at `first`, hex (the writer's stored state).
    pub start_state: Option<String>,
    /// The signed checkpoint of size `first + count` that seals it.
    pub end_checkpoint: String,
}

impl SegmentHeader {
    /// The file name a segment goes by wherever it is kept.
    pub fn file_name(&self) -> String {
        file_name(self.number, self.first, self.count)
    }
}

/// `segment-000001-0-999999.log`: number, first and last entry.
pub fn file_name(number: u64, first: u64, count: u64) -> String {
    format!(
        "segment-{number:06}-{first}-{}.log",
        (first + count).saturating_sub(1)
    )
}

/// What sealing wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedFile {
    /// Where.
    pub path: PathBuf,
    /// The file's SHA-256, hex.
    pub sha256: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// The times of its first and last entries.
    pub first_time: String,
    /// The time of its last entry.
    pub last_time: String,
}

/// Writes a segment, checking as it goes that the entries continue the
/// chain from the starting frontier and end at the sealing checkpoint.
pub struct SegmentWriter {
    header: SegmentHeader,
    end: Checkpoint,
    tmp: PathBuf,
    path: PathBuf,
    out: BufWriter<File>,
    sha: Sha256,
    bytes: u64,
    frontier: Frontier,
    prev: Hash,
    written: u64,
    first_time: String,
    last_time: String,
}

fn io(path: &Path, e: std::io::Error) -> EvidenceError {
    EvidenceError::Store(format!("{}: {e}", path.display()))
}

impl SegmentWriter {
    /// Starts `header`'s file in `dir` (under a temporary name until
    /// [`SegmentWriter::finish`]); `start` is the frontier and last leaf at
    /// `header.first` (from the starting checkpoint's stored state), `end`
    /// the sealing checkpoint.
    pub fn create(
        dir: &Path,
        header: SegmentHeader,
        start: Option<(Frontier, Hash)>,
        end: Checkpoint,
    ) -> Result<Self, EvidenceError> {
        let (frontier, prev) = start.unwrap_or_default();
        if frontier.size() != header.first || end.size != header.first + header.count {
            return Err(EvidenceError::Damaged(format!(
                "segment {}: the starting state (size {}) or sealing checkpoint (size {}) does not fit entries {} to {}",
                header.number,
                frontier.size(),
                end.size,
                header.first,
                header.first + header.count
            )));
        }
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let path = dir.join(header.file_name());
        let tmp = dir.join(format!(".{}.tmp", header.file_name()));
        let file = File::create(&tmp).map_err(|e| io(&tmp, e))?;
        let mut w = Self {
            header,
            end,
            tmp,
            path,
            out: BufWriter::new(file),
            sha: Sha256::new(),
            bytes: 0,
            frontier,
            prev,
            written: 0,
            first_time: String::new(),
            last_time: String::new(),
        };
        let mut line =
            serde_json::to_vec(&w.header).map_err(|e| EvidenceError::Encoding(e.to_string()))?;
        line.push(b'\n');
        w.write(&line)?;
        Ok(w)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), EvidenceError> {
        self.out.write_all(bytes).map_err(|e| io(&self.tmp, e))?;
        self.sha.update(bytes);
        self.bytes += bytes.len() as u64;
        Ok(())
    }

    /// The sequence number the next entry must have.
    pub fn next(&self) -> u64 {
        self.header.first + self.written
    }

    /// Entries still to write.
    pub fn remaining(&self) -> u64 {
        self.header.count - self.written
    }

    /// The next entry's stored bytes (entries in sequence order).
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), EvidenceError> {
        let want = self.header.first + self.written;
        let damaged = |why: String| {
            EvidenceError::Damaged(format!("cannot seal entry {want} into a segment: {why}"))
        };
        let head = Entry::decode_head(bytes).map_err(|e| damaged(e.to_string()))?;
        if head.seq != want {
            return Err(damaged(format!("found entry {} in its place", head.seq)));
        }
        if self.frontier.size() > 0 && head.prev != self.prev || want == 0 && head.prev != [0; 32] {
            return Err(damaged("it does not link to the entry before it".into()));
        }
        if self.written == 0 {
            self.first_time = head.time.clone();
        }
        self.last_time = head.time;
        self.prev = leaf_hash(bytes);
        self.frontier.push(self.prev);
        self.write(bytes)?;
        self.write(b"\n")?;
        self.written += 1;
        Ok(())
    }

    /// Checks the entries end at the sealing checkpoint's root, makes the
    /// file durable and gives it its name.
    pub fn finish(mut self) -> Result<SealedFile, EvidenceError> {
        if self.remaining() != 0 || self.frontier.root() != self.end.root {
            let _ = std::fs::remove_file(&self.tmp);
            return Err(EvidenceError::Damaged(format!(
                "segment {}: entries {} to {} do not hash to the checkpoint that would seal them",
                self.header.number,
                self.header.first,
                (self.header.first + self.header.count).saturating_sub(1)
            )));
        }
        self.out.flush().map_err(|e| io(&self.tmp, e))?;
        let file = self
            .out
            .into_inner()
            .map_err(|e| io(&self.tmp, e.into_error()))?;
        file.sync_all().map_err(|e| io(&self.tmp, e))?;
        std::fs::rename(&self.tmp, &self.path).map_err(|e| io(&self.path, e))?;
        if let Some(dir) = self.path.parent() {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| io(dir, e))?;
        }
        Ok(SealedFile {
            path: self.path,
            sha256: hex::encode(self.sha.finalize()),
            bytes: self.bytes,
            first_time: self.first_time,
            last_time: self.last_time,
        })
    }
}

/// Reads a segment file's entries a page at a time.
pub struct SegmentReader {
    header: SegmentHeader,
    path: PathBuf,
    lines: BufReader<File>,
    read: u64,
    /// Of every byte read so far (the whole file, once at its end).
    sha: Sha256,
}

impl SegmentReader {
    /// Opens `path` and reads its header.
    pub fn open(path: &Path) -> Result<Self, EvidenceError> {
        let file = File::open(path).map_err(|e| io(path, e))?;
        let mut lines = BufReader::new(file);
        let mut first = String::new();
        lines.read_line(&mut first).map_err(|e| io(path, e))?;
        let mut sha = Sha256::new();
        sha.update(first.as_bytes());
        let header: SegmentHeader = serde_json::from_str(first.trim_end()).map_err(|e| {
            EvidenceError::Damaged(format!(
                "{}: not an evidence segment (its first line: {e})",
                path.display()
            ))
        })?;
        if header.format != SEGMENT_FORMAT {
            return Err(EvidenceError::Damaged(format!(
                "{}: segment format {:?}, this gatehouse reads {SEGMENT_FORMAT}",
                path.display(),
                header.format
            )));
        }
        Ok(Self {
            header,
            path: path.to_path_buf(),
            lines,
            read: 0,
            sha,
        })
    }

    /// Its header.
    pub fn header(&self) -> &SegmentHeader {
        &self.header
    }

    /// The SHA-256 of what was read, hex: the file's, once every page was.
    pub fn sha256(&self) -> String {
        hex::encode(self.sha.clone().finalize())
    }

    /// Up to `limit` more entries as rows (positions counted from the
    /// header's `first_position`; the number is the line's own, as the
    /// verifier reads it). Empty at the end. Lines past the header's count
    /// are read too (verification names them).
    pub fn next_page(&mut self, limit: usize) -> Result<Vec<LogRow>, EvidenceError> {
        let mut page = Vec::with_capacity(limit.min(4096));
        let mut line = Vec::new();
        while page.len() < limit {
            line.clear();
            let n = self
                .lines
                .read_until(b'\n', &mut line)
                .map_err(|e| io(&self.path, e))?;
            if n == 0 {
                break;
            }
            self.sha.update(&line);
            if line.last() == Some(&b'\n') {
                line.pop();
            }
            // A hostile header cannot make these overflow into a panic.
            let (Some(position), Some(seq)) = (
                i64::try_from(self.read)
                    .ok()
                    .and_then(|r| self.header.first_position.checked_add(r)),
                self.header
                    .first
                    .checked_add(self.read)
                    .and_then(|s| i64::try_from(s).ok()),
            ) else {
                return Err(EvidenceError::Damaged(format!(
                    "{}: its header's numbers are out of range",
                    self.path.display()
                )));
            };
            self.read += 1;
            page.push(LogRow {
                position,
                seq,
                bytes: line.clone(),
            });
        }
        Ok(page)
    }
}
