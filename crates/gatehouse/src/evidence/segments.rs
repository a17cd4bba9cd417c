//! Sealed segments on this node: sealing the oldest signed stretch of the
//! live log into a file once it is long enough, moving sealed files to the
//! archive, and finding them again for verification and evidence packs.
//!
//! A segment ends at a stored checkpoint (with the writer's state) that is
//! older than the newest one, so a restart, which reads the newest
//! checkpoint's last entry, never needs a sealed entry; and before every
//! live sink's saved position, so a sink never looks for an entry that left
//! the store.

use crate::config::{Archive, SegmentSpec};
use anyhow::{anyhow, bail, Context, Result};
use gatehouse_core::EvidenceStore;
use gatehouse_evidence::merkle::Frontier;
use gatehouse_evidence::segment::{SegmentHeader, SegmentWriter, SEGMENT_FORMAT};
use gatehouse_evidence::{EvidenceError, SegmentFiles, VerifierKey};
use gatehouse_store::{SegmentRecord, SqliteEvidenceStore};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How often the node looks for a segment to seal or archive.
const SEAL_EVERY: Duration = Duration::from_secs(60);

/// Rows read from the store per page while sealing.
const PAGE: usize = 4096;

fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

/// Seals the next segment if one is ready: returns it, or `None`.
/// `hold_from`: the first entry a live sink may still ask the store for.
pub async fn seal_next(
    store: &SqliteEvidenceStore,
    key: &VerifierKey,
    spec: &SegmentSpec,
    hold_from: u64,
) -> Result<Option<SegmentRecord>> {
    if spec.entries == 0 {
        return Ok(None);
    }
    // Earlier segments' rows go first (what a crash or a failure left, too):
    // the seal checks that no row is stored below this segment's but its own.
    store.purge_sealed().await?;
    let sealed = store.segments().await?;
    let first = sealed.last().map_or(0, |s| s.first + s.count);
    let number = sealed.last().map_or(1, |s| s.number + 1);
    let Some(newest) = store.latest_checkpoint().await? else {
        return Ok(None);
    };
    let Some(end) = store.checkpoint_at_least(first + spec.entries).await? else {
        return Ok(None);
    };
    if end.size >= newest.size || end.size > hold_from {
        return Ok(None);
    }
    let end_cp = key
        .open(&end.note)
        .map_err(|e| anyhow!("the checkpoint of size {} does not verify: {e}", end.size))?;
    let start = if first == 0 {
        None
    } else {
        let cp = store
            .checkpoint_at_least(first)
            .await?
            .filter(|c| c.size == first)
            .ok_or_else(|| {
                anyhow!(
                    "no stored checkpoint of size {first}, where segment {} ended",
                    number - 1
                )
            })?;
        let signed = key
            .open(&cp.note)
            .map_err(|e| anyhow!("the checkpoint of size {first} does not verify: {e}"))?;
        let (frontier, last) = Frontier::from_state(&cp.state)
            .filter(|(f, _)| f.root() == signed.root && f.size() == first)
            .ok_or_else(|| {
                anyhow!("the state stored with the checkpoint of size {first} does not match it")
            })?;
        Some((cp.note, frontier, last))
    };
    let page = store.entries_from(first, PAGE).await?;
    let first_position = page
        .first()
        .map(|r| r.position)
        .ok_or_else(|| anyhow!("entry {first} is not in the live store"))?;
    let header = SegmentHeader {
        format: SEGMENT_FORMAT.into(),
        number,
        first,
        count: end.size - first,
        first_position,
        start_checkpoint: start.as_ref().map(|(note, _, _)| note.clone()),
        start_state: start
            .as_ref()
            .map(|(_, f, last)| hex::encode(f.state(last))),
        end_checkpoint: end.note.clone(),
    };
    let start_state = start.map(|(_, f, last)| (f, last));
    // File writes on the blocking pool; the store's pages fetched from there.
    let (dir, store_copy) = (spec.dir.clone(), store.clone());
    let handle = tokio::runtime::Handle::current();
    let (file, last_position) = tokio::task::spawn_blocking(move || -> Result<_> {
        let mut w = SegmentWriter::create(&dir, header, start_state, end_cp)?;
        let mut page = page;
        let mut last_position: Option<i64> = None;
        let verify = "run `gatehouse audit verify`; the log stays whole in its store until this is resolved";
        loop {
            for row in &page {
                if w.remaining() == 0 {
                    break;
                }
                // The store finds the sealed rows by the number filed beside
                // each one: it must be the entry's own, once each.
                let next = w.next() as i64;
                if row.seq > next {
                    bail!("cannot seal entry {next} into a segment: no row is filed as entry {next} (the next is {}, at storage position {}); {verify}", row.seq, row.position);
                }
                if row.seq < next {
                    bail!("cannot seal entry {} into a segment: it is filed twice (again at storage position {}); {verify}", row.seq, row.position);
                }
                // Stored in order: sealing must not tidy away a reordering.
                if last_position.is_some_and(|p| row.position <= p) {
                    bail!("cannot seal entry {next} into a segment: it is stored before the entry it follows (storage position {}); {verify}", row.position);
                }
                last_position = Some(row.position);
                w.push(&row.bytes)?;
            }
            if w.remaining() == 0 {
                let last = last_position.ok_or_else(|| anyhow!("an empty segment"))?;
                return Ok((w.finish()?, last));
            }
            if page.len() < PAGE {
                bail!("the live store ends at entry {}, inside the segment being sealed", w.next());
            }
            page = handle.block_on(store_copy.entries_from(w.next(), PAGE))?;
        }
    })
    .await??;
    let record = SegmentRecord {
        number,
        first,
        count: end.size - first,
        file: file
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        sha256: file.sha256,
        bytes: file.bytes,
        first_time: file.first_time,
        last_time: file.last_time,
        sealed_at: now(),
        archived_to: None,
        archived_at: None,
        first_position,
        last_position,
        purged_through: None,
    };
    store.seal_segment(record.clone()).await?;
    store.purge_sealed().await?;
    tracing::info!(
        segment = number,
        first,
        last = end.size - 1,
        file = %file.path.display(),
        "sealed an evidence segment"
    );
    Ok(Some(record))
}

/// The first entry some live sink may still read from the store: the entry
/// before its saved position (which it checks at start), or 0 for a sink
/// that has saved none.
pub fn hold_from(cursors: &[PathBuf]) -> u64 {
    cursors
        .iter()
        .map(|c| {
            std::fs::read_to_string(c)
                .ok()
                .and_then(|t| t.split_whitespace().next()?.parse::<u64>().ok())
                .map_or(0, |next| next.saturating_sub(1))
        })
        .min()
        .unwrap_or(u64::MAX)
}

/// `s` quoted for `sh`.
fn quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `cmd` with `{file}` and `{name}` filled in, quoted.
fn command(cmd: &str, file: &Path, name: &str) -> String {
    cmd.replace("{file}", &quoted(&file.to_string_lossy()))
        .replace("{name}", &quoted(name))
}

/// Runs `cmd` with `sh`. Errors name the command by `what` (its config
/// key), never its text: an operator may have put a credential in it.
async fn run(what: &str, cmd: &str) -> Result<()> {
    let out = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .with_context(|| format!("running the {what} (sh -c)"))?;
    if !out.status.success() {
        bail!(
            "the {what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The SHA-256 of a file, hex.
fn file_sha256(path: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    let mut f = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).with_context(|| format!("reading {}", path.display()))?;
    Ok(hex::encode(h.finalize()))
}

/// Copies `from` to `dir` durably (a temporary name, checked against
/// `sha256`, then renamed): the local copy is removed only after this.
fn copy_durably(from: &Path, dir: &Path, name: &str, sha256: &str) -> Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::copy(from, &tmp)
        .with_context(|| format!("copying {} to {}", from.display(), tmp.display()))?;
    let copied = file_sha256(&tmp)?;
    if copied != sha256 {
        let _ = std::fs::remove_file(&tmp);
        bail!(
            "the copy of {name} in {} does not hash to the SHA-256 recorded when it was sealed \
             ({sha256}; the copy: {copied}); the local file is kept",
            dir.display()
        );
    }
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("syncing {}", tmp.display()))?;
    std::fs::rename(&tmp, dir.join(name)).with_context(|| format!("renaming {}", tmp.display()))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))?;
    Ok(())
}

/// Moves every sealed segment not yet archived to the archive, recording
/// each; the local copy is removed once the archive holds it.
pub async fn archive_pending(store: &SqliteEvidenceStore, spec: &SegmentSpec) -> Result<usize> {
    let Some(archive) = &spec.archive else {
        return Ok(0);
    };
    let mut moved = 0;
    for seg in store.segments().await? {
        if seg.archived_to.is_some() {
            continue;
        }
        let local = spec.dir.join(&seg.file);
        let to = match archive {
            Archive::Dir(dir) => {
                let (local, dir, name, sha) = (
                    local.clone(),
                    dir.clone(),
                    seg.file.clone(),
                    seg.sha256.clone(),
                );
                tokio::task::spawn_blocking(move || copy_durably(&local, &dir, &name, &sha))
                    .await??;
                dir_label(archive)
            }
            Archive::Command(cmd) => {
                run("archive_command", &command(cmd, &local, &seg.file)).await?;
                dir_label(archive)
            }
        };
        store.segment_archived(seg.number, to, now()).await?;
        tokio::fs::remove_file(&local)
            .await
            .with_context(|| format!("removing {}", local.display()))?;
        tracing::info!(segment = seg.number, file = %seg.file, "archived an evidence segment");
        moved += 1;
    }
    Ok(moved)
}

fn dir_label(archive: &Archive) -> String {
    match archive {
        Archive::Dir(d) => d.display().to_string(),
        Archive::Command(_) => "archive_command".into(),
    }
}

/// Seals what is ready and archives what is sealed, every minute, until
/// aborted. Failures are logged and retried: the live log goes on either way.
pub fn spawn_sealer(
    store: SqliteEvidenceStore,
    key: VerifierKey,
    spec: SegmentSpec,
    cursors: Vec<PathBuf>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SEAL_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            loop {
                let now_cursors = cursors.clone();
                // Small files, read off the runtime; unreadable holds everything.
                let hold = tokio::task::spawn_blocking(move || hold_from(&now_cursors))
                    .await
                    .unwrap_or(0);
                match seal_next(&store, &key, &spec, hold).await {
                    Ok(Some(_)) => continue,
                    Ok(None) => break,
                    Err(e) => {
                        tracing::error!(error = %format!("{e:#}"), "could not seal an evidence segment; no further segment is sealed until this is fixed (the live log goes on)");
                        break;
                    }
                }
            }
            if let Err(e) = archive_pending(&store, &spec).await {
                tracing::warn!(error = %format!("{e:#}"), "could not archive an evidence segment; retrying in a minute");
            }
        }
    })
}

/// Where readers look for segment files.
#[derive(Clone, Debug, Default)]
pub struct SegmentPlaces {
    /// Directories, searched in order.
    pub dirs: Vec<PathBuf>,
    /// The command that brings an archived segment back.
    pub fetch_command: Option<String>,
}

impl SegmentPlaces {
    /// The configured places: the segment directory, then the archive.
    pub fn configured(spec: &SegmentSpec) -> Self {
        let mut dirs = vec![spec.dir.clone()];
        if let Some(Archive::Dir(d)) = &spec.archive {
            dirs.push(d.clone());
        }
        Self {
            dirs,
            fetch_command: spec.fetch_command.clone(),
        }
    }

    /// Beside a log file given by path: its `evidence-segments` folder.
    pub fn beside(log: &Path) -> Self {
        Self {
            dirs: vec![log
                .parent()
                .unwrap_or(Path::new("."))
                .join("evidence-segments")],
            fetch_command: None,
        }
    }

    /// Finds each of `segments`' files: in a folder, or (archived where
    /// only the fetch command reaches) brought back when a reader reaches
    /// it, into a scratch folder, and removed when it is done with it.
    pub fn find(&self, segments: &[SegmentRecord]) -> Result<FoundSegments> {
        let mut spots = Vec::with_capacity(segments.len());
        for seg in segments {
            let what = format!(
                "segment {} (entries {} to {}, file {})",
                seg.number,
                seg.first,
                (seg.first + seg.count).saturating_sub(1),
                seg.file
            );
            if let Some(p) = self
                .dirs
                .iter()
                .map(|d| d.join(&seg.file))
                .find(|p| p.is_file())
            {
                spots.push(Spot::Here(p, what));
                continue;
            }
            let looked: Vec<String> = self.dirs.iter().map(|d| d.display().to_string()).collect();
            let Some(fetch) = &self.fetch_command else {
                bail!(
                    "{what} is not in {}: bring it back there, or name its folder with --segments",
                    looked.join(", ")
                );
            };
            spots.push(Spot::Fetch {
                command: fetch.clone(),
                file: seg.file.clone(),
                what: format!("{what} is not in {}; fetching it", looked.join(", ")),
            });
        }
        Ok(FoundSegments {
            sha256: segments.iter().map(|s| s.sha256.clone()).collect(),
            spots,
            scratch: tempfile::tempdir().context("a scratch folder for fetched segments")?,
        })
    }
}

/// Where one segment's file is.
enum Spot {
    /// At this path (and how to name it).
    Here(PathBuf, String),
    Fetch {
        command: String,
        file: String,
        what: String,
    },
}

/// The segment files of a log, found ([`SegmentPlaces::find`]).
pub struct FoundSegments {
    spots: Vec<Spot>,
    /// Each file's SHA-256 when it was sealed.
    sha256: Vec<String>,
    scratch: tempfile::TempDir,
}

#[async_trait::async_trait]
impl SegmentFiles for FoundSegments {
    fn count(&self) -> usize {
        self.spots.len()
    }

    async fn open(&self, i: usize) -> Result<PathBuf, EvidenceError> {
        match self.spots.get(i) {
            Some(Spot::Here(p, what)) if !p.is_file() => Err(EvidenceError::Store(format!(
                "{what} was moved from {} while this command ran (archived?): run it again",
                p.display()
            ))),
            Some(Spot::Here(p, _)) => Ok(p.clone()),
            Some(Spot::Fetch {
                command: fetch,
                file,
                what,
            }) => {
                let into = self.scratch.path().join(file);
                run("fetch_command", &command(fetch, &into, file))
                    .await
                    .map_err(|e| EvidenceError::Store(format!("{what}: {e:#}")))?;
                if !into.is_file() {
                    return Err(EvidenceError::Store(format!(
                        "{what}: the fetch command succeeded but wrote no {}",
                        into.display()
                    )));
                }
                Ok(into)
            }
            None => Err(EvidenceError::Store(format!(
                "there is no segment {}",
                i + 1
            ))),
        }
    }

    fn sha256(&self, i: usize) -> Option<String> {
        self.sha256.get(i).cloned()
    }

    async fn done(&self, i: usize) {
        if let Some(Spot::Fetch { file, .. }) = self.spots.get(i) {
            let _ = tokio::fs::remove_file(self.scratch.path().join(file)).await;
        }
    }
}

/// `gatehouse audit segments`: every sealed segment and where its file is.
pub async fn list(
    log: &Path,
    places: &SegmentPlaces,
    json: bool,
) -> Result<std::process::ExitCode> {
    let store = SqliteEvidenceStore::open_read_only(log)
        .await
        .with_context(|| format!("reading the evidence log {}", log.display()))?;
    let records = store.segments().await?;
    let live_first = records.last().map_or(0, |s| s.first + s.count);
    let live_last = store.last_seq().await?;
    let found: Vec<Option<PathBuf>> = records
        .iter()
        .map(|s| {
            places
                .dirs
                .iter()
                .map(|d| d.join(&s.file))
                .find(|p| p.is_file())
        })
        .collect();
    if json {
        let rows: Vec<serde_json::Value> = records
            .iter()
            .zip(&found)
            .map(|(s, at)| {
                serde_json::json!({
                    "number": s.number,
                    "first": s.first,
                    "last": (s.first + s.count).saturating_sub(1),
                    "entries": s.count,
                    "first_time": s.first_time,
                    "last_time": s.last_time,
                    "file": s.file,
                    "sha256": s.sha256,
                    "bytes": s.bytes,
                    "sealed_at": s.sealed_at,
                    "archived_to": s.archived_to,
                    "archived_at": s.archived_at,
                    "found_at": at.as_ref().map(|p| p.display().to_string()),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(std::process::ExitCode::SUCCESS);
    }
    if records.is_empty() {
        println!("no sealed segments: the whole log is in {}", log.display());
    }
    for (s, at) in records.iter().zip(&found) {
        let place = match (at, &s.archived_to, &places.fetch_command) {
            (Some(p), _, _) => format!("at {}", p.display()),
            (None, Some(to), Some(_)) => format!("archived to {to} (fetched on demand)"),
            (None, Some(to), None) => format!("archived to {to}; not found here"),
            (None, None, _) => "NOT FOUND in the segment folders".into(),
        };
        println!(
            "segment {}: entries {} to {} ({} to {}), {} bytes, sha256 {}, sealed {}; {place}",
            s.number,
            s.first,
            (s.first + s.count).saturating_sub(1),
            s.first_time,
            s.last_time,
            s.bytes,
            s.sha256,
            s.sealed_at
        );
    }
    match live_last {
        Some(last) if last + 1 > live_first => {
            println!("live: entries {live_first} to {last} in {}", log.display())
        }
        _ => println!("live: no entries after the last segment yet"),
    }
    Ok(std::process::ExitCode::SUCCESS)
}
