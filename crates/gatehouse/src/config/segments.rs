//! `[evidence.segments]`: how the evidence log is kept in sealed segments
//! and where old segments go.

use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct SegmentSection {
    entries: Option<u64>,
    dir: Option<String>,
    archive_dir: Option<String>,
    archive_command: Option<String>,
    fetch_command: Option<String>,
}

/// How segments are sealed and kept, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentSpec {
    /// Seal a segment once this many signed entries follow the last one
    /// (0: never; the log stays whole in its store).
    pub entries: u64,
    /// Where sealed segments are written.
    pub dir: PathBuf,
    /// Where they are then moved, if anywhere.
    pub archive: Option<Archive>,
    /// How to bring an archived segment back (a command with `{name}` and
    /// `{file}`), when the archive is not a directory this host reads.
    pub fetch_command: Option<String>,
}

/// Where sealed segments are moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Archive {
    /// A directory (another disk, a network mount).
    Dir(PathBuf),
    /// A command run for each sealed segment, with `{file}` (its path) and
    /// `{name}` (its file name): `aws s3 cp {file} s3://bucket/{name}`.
    Command(String),
}

/// A million entries: a few hundred MB of file per segment.
pub const DEFAULT_SEGMENT_ENTRIES: u64 = 1_000_000;
/// The smallest segment: smaller ones would be mostly header.
const MIN_SEGMENT_ENTRIES: u64 = 100;

impl SegmentSection {
    pub(super) fn resolve(
        &self,
        path: impl Fn(&str) -> PathBuf,
        data_dir: &Path,
        bad: &mut dyn FnMut(&str, String),
    ) -> SegmentSpec {
        let entries = self.entries.unwrap_or(DEFAULT_SEGMENT_ENTRIES);
        if entries != 0 && entries < MIN_SEGMENT_ENTRIES {
            bad(
                "segments.entries",
                format!("{entries} is too small: at least {MIN_SEGMENT_ENTRIES} entries, or 0 to keep the log whole"),
            );
        }
        let dir = self
            .dir
            .as_deref()
            .map_or_else(|| data_dir.join("evidence-segments"), &path);
        let placeholders = |key: &str, cmd: &str, bad: &mut dyn FnMut(&str, String)| {
            if !(cmd.contains("{file}") && cmd.contains("{name}")) {
                bad(
                    key,
                    format!("{cmd:?} must use {{file}} (the segment's path here) and {{name}} (its file name)"),
                );
            }
        };
        let archive = match (&self.archive_dir, &self.archive_command) {
            (Some(_), Some(_)) => {
                bad(
                    "segments.archive_dir",
                    "give archive_dir or archive_command, not both".into(),
                );
                None
            }
            (Some(d), None) => {
                let d = path(d);
                if !d.is_dir() {
                    bad(
                        "segments.archive_dir",
                        format!("{} is not a directory", d.display()),
                    );
                }
                Some(Archive::Dir(d))
            }
            (None, Some(cmd)) => {
                placeholders("segments.archive_command", cmd, bad);
                if self.fetch_command.is_none() {
                    bad(
                        "segments.fetch_command",
                        "archive_command needs a fetch_command too: verification and evidence packs bring archived segments back with it".into(),
                    );
                }
                Some(Archive::Command(cmd.clone()))
            }
            (None, None) => None,
        };
        if let Some(cmd) = &self.fetch_command {
            placeholders("segments.fetch_command", cmd, bad);
        }
        SegmentSpec {
            entries,
            dir,
            archive,
            fetch_command: self.fetch_command.clone(),
        }
    }
}
