//! The evidence log's store: its own SQLite file, so its commits (which wait
//! for the disk) never queue behind session recording, and so it can be
//! copied or verified on its own.
//!
//! It uses one synchronous SQLite connection on tokio's blocking pool
//! (rusqlite) rather than sqlx: a commit is then one hop to a thread and
//! back, where sqlx's worker needs one per statement (BEGIN, INSERT,
//! COMMIT); measured, that halves the time an acknowledged append takes.

use async_trait::async_trait;
use gatehouse_core::{EvidenceStore, LogRow, StoreError, StoredCheckpoint};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The schema; `user_version` numbers it.
const SCHEMA: &str = "
-- The evidence log: entries as written (canonical JSON), in append order.
-- No uniqueness or ordering constraint is relied on: verification finds
-- duplicates, gaps and reorderings itself, as whoever edits the file could
-- drop any constraint.
CREATE TABLE IF NOT EXISTS entries (
    position INTEGER PRIMARY KEY,
    seq      INTEGER NOT NULL,
    bytes    BLOB NOT NULL
);
-- Live sinks read onwards from a sequence number.
CREATE INDEX IF NOT EXISTS entries_seq ON entries (seq);
-- Signed checkpoints (C2SP signed notes), oldest first.
CREATE TABLE IF NOT EXISTS checkpoints (
    position INTEGER PRIMARY KEY,
    size     INTEGER NOT NULL,
    note     TEXT NOT NULL
);
";
/// Version 2: each checkpoint keeps the writer's state at it (the Merkle
/// frontier and the last entry's hash), so a restart resumes from it.
/// One transaction: a crash between the two leaves neither.
const SCHEMA_V2: &str = "
BEGIN;
ALTER TABLE checkpoints ADD COLUMN state BLOB;
PRAGMA user_version = 2;
COMMIT;
";
/// Version 3: sealed segments (stretches of the log moved to files of
/// their own), and checkpoints found by size.
const SCHEMA_V3: &str = "
BEGIN;
CREATE TABLE IF NOT EXISTS segments (
    number      INTEGER PRIMARY KEY,
    first       INTEGER NOT NULL,
    count       INTEGER NOT NULL,
    file        TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    bytes       INTEGER NOT NULL,
    first_time  TEXT NOT NULL,
    last_time   TEXT NOT NULL,
    sealed_at   TEXT NOT NULL,
    archived_to TEXT,
    archived_at TEXT,
    first_position INTEGER NOT NULL,
    last_position  INTEGER NOT NULL,
    purged_through INTEGER
);
CREATE INDEX IF NOT EXISTS checkpoints_size ON checkpoints (size);
PRAGMA user_version = 3;
COMMIT;
";
const SCHEMA_VERSION: i64 = 3;

/// Rows removed per transaction when a sealed segment leaves the live
/// store (each a few milliseconds: appends interleave).
const PURGE_SLICE: i64 = 20_000;

/// A sealed segment as the live store records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentRecord {
    /// Its number, from 1.
    pub number: u64,
    /// Its first entry.
    pub first: u64,
    /// Entries it holds.
    pub count: u64,
    /// Its file name (wherever it is kept).
    pub file: String,
    /// The file's SHA-256, hex.
    pub sha256: String,
    /// The file's size.
    pub bytes: u64,
    /// Its first entry's time.
    pub first_time: String,
    /// Its last entry's time.
    pub last_time: String,
    /// When it was sealed (RFC 3339).
    pub sealed_at: String,
    /// Where it was archived (a directory or `command`), if it was.
    pub archived_to: Option<String>,
    /// When.
    pub archived_at: Option<String>,
    /// Where its entries were stored in the live store: readers of the
    /// live store go on after `last_position`.
    pub first_position: i64,
    /// The last of them.
    pub last_position: i64,
    /// Up to where its rows have been removed from the live store (none
    /// yet: `None`; all: `last_position`).
    pub purged_through: Option<i64>,
}

impl SegmentRecord {
    /// The storage positions of its rows still awaiting removal, if any:
    /// rows there are the segment's own, read from its file instead.
    pub fn awaiting_purge(&self) -> Option<(i64, i64)> {
        let from = self
            .purged_through
            .map_or(self.first_position, |p| p.saturating_add(1));
        (from <= self.last_position).then_some((from, self.last_position))
    }
}

/// How far a commit is durable before it is acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// On disk (fsync per commit): survives power loss.
    Disk,
    /// Handed to the operating system: survives the gateway being killed,
    /// not a power loss.
    Os,
}

/// The evidence log in a SQLite file; the connection closes when the last
/// clone is dropped.
#[derive(Clone)]
pub struct SqliteEvidenceStore {
    conn: Arc<Mutex<Connection>>,
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl SqliteEvidenceStore {
    /// Opens (creating if needed) the log at `path` for writing.
    pub async fn open(path: &Path, durability: Durability) -> Result<Self, StoreError> {
        let path = path.to_path_buf();
        blocking(move || {
            let at = |e: rusqlite::Error| unavailable(format!("{}: {e}", path.display()));
            let conn = Connection::open(&path).map_err(at)?;
            conn.busy_timeout(Duration::from_secs(5)).map_err(at)?;
            let mode: String = conn
                .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
                .map_err(at)?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(unavailable(format!(
                    "{}: cannot use write-ahead logging (journal mode {mode})",
                    path.display()
                )));
            }
            let sync = match durability {
                Durability::Disk => "FULL",
                Durability::Os => "NORMAL",
            };
            conn.execute_batch(&format!("PRAGMA synchronous = {sync};"))
                .map_err(at)?;
            let version: i64 = conn
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .map_err(at)?;
            if version > SCHEMA_VERSION {
                return Err(unavailable(format!(
                    "{}: written by a newer gatehouse (schema {version})",
                    path.display()
                )));
            }
            conn.execute_batch(SCHEMA).map_err(at)?;
            if version < 2 {
                conn.execute_batch(SCHEMA_V2).map_err(at)?;
            }
            if version < 3 {
                conn.execute_batch(SCHEMA_V3).map_err(at)?;
            }
            Ok(Self::wrap(conn))
        })
        .await
    }

    /// Opens an existing log to read it (verification, proofs, export),
    /// whether or not a gateway is writing it.
    pub async fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        if !path.exists() {
            return Err(StoreError::NotFound(format!(
                "no evidence log at {}",
                path.display()
            )));
        }
        let path = path.to_path_buf();
        blocking(move || {
            let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)
                .map_err(|e| unavailable(format!("{}: {e}", path.display())))?;
            conn.busy_timeout(Duration::from_secs(5))
                .map_err(unavailable)?;
            Ok(Self::wrap(conn))
        })
        .await
    }

    /// From now on every read sees the log as it is now (one read
    /// transaction, held until the store is dropped): a reader making
    /// several passes over a log a gateway is writing, sealing and
    /// archiving sees the same entries, segments and checkpoints each time.
    pub async fn hold_snapshot(&self) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute_batch("BEGIN DEFERRED")?;
            c.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|_| ())
        })
        .await
    }

    /// The sealed segments, oldest first (none in a log written before
    /// segments were kept).
    pub async fn segments(&self) -> Result<Vec<SegmentRecord>, StoreError> {
        self.with(|c| {
            let exists: bool = c.query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'segments')",
                [],
                |r| r.get(0),
            )?;
            if !exists {
                return Ok(Vec::new());
            }
            let mut st = c.prepare(
                "SELECT number, first, count, file, sha256, bytes, first_time, last_time, sealed_at, \
                 archived_to, archived_at, first_position, last_position, purged_through \
                 FROM segments ORDER BY number",
            )?;
            let rows = st.query_map([], |r| {
                Ok(SegmentRecord {
                    number: r.get::<_, i64>(0)? as u64,
                    first: r.get::<_, i64>(1)? as u64,
                    count: r.get::<_, i64>(2)? as u64,
                    file: r.get(3)?,
                    sha256: r.get(4)?,
                    bytes: r.get::<_, i64>(5)? as u64,
                    first_time: r.get(6)?,
                    last_time: r.get(7)?,
                    sealed_at: r.get(8)?,
                    archived_to: r.get(9)?,
                    archived_at: r.get(10)?,
                    first_position: r.get(11)?,
                    last_position: r.get(12)?,
                    purged_through: r.get(13)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    /// The smallest checkpoint of at least `size` entries stored with the
    /// writer's state (where a segment can end).
    pub async fn checkpoint_at_least(
        &self,
        size: u64,
    ) -> Result<Option<StoredCheckpoint>, StoreError> {
        self.with(move |c| {
            c.query_row(
                "SELECT size, note, state FROM checkpoints WHERE size >= ?1 AND state IS NOT NULL \
                 ORDER BY size, position LIMIT 1",
                params![size as i64],
                |r| {
                    Ok(StoredCheckpoint {
                        size: r.get::<_, i64>(0)? as u64,
                        note: r.get(1)?,
                        state: r.get(2)?,
                    })
                },
            )
            .optional()
        })
        .await
    }

    /// The largest tree size any stored checkpoint covers (0: none).
    pub async fn largest_checkpoint(&self) -> Result<u64, StoreError> {
        self.with(|c| {
            c.query_row("SELECT MAX(size) FROM checkpoints", [], |r| {
                r.get::<_, Option<i64>>(0)
            })
            .map(|v| v.map_or(0, |s| s as u64))
        })
        .await
    }

    /// Records `segment` as sealed (its file is durable before this).
    /// Refused, with nothing changed, unless exactly the segment's rows are
    /// in the live store: no other row among them, no second copy of one
    /// elsewhere. Its rows are then removed a slice at a time by
    /// [`Self::purge_sealed`]; readers of the live store go on after the
    /// segment's last position, so they never see them twice.
    pub async fn seal_segment(&self, segment: SegmentRecord) -> Result<(), StoreError> {
        let count = segment.count;
        let outcome = self
            .with(move |c| {
                let tx = c.transaction()?;
                let (first, end) = (segment.first as i64, (segment.first + segment.count) as i64);
                let numbered: i64 = tx.query_row(
                    "SELECT count(*) FROM entries WHERE seq >= ?1 AND seq < ?2",
                    params![first, end],
                    |r| r.get(0),
                )?;
                // Every row stored up to the segment's last is its own: the
                // earlier segments' rows are removed before a seal, and no
                // other row may hide below the live log's start.
                let placed: i64 = tx.query_row(
                    "SELECT count(*) FROM entries WHERE position <= ?1",
                    params![segment.last_position],
                    |r| r.get(0),
                )?;
                if numbered != segment.count as i64 || placed != segment.count as i64 {
                    // Dropped without commit: rolled back.
                    return Ok(Err((numbered, placed)));
                }
                tx.execute(
                    "INSERT INTO segments (number, first, count, file, sha256, bytes, first_time, \
                     last_time, sealed_at, first_position, last_position) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                    params![
                        segment.number as i64,
                        segment.first as i64,
                        segment.count as i64,
                        segment.file,
                        segment.sha256,
                        segment.bytes as i64,
                        segment.first_time,
                        segment.last_time,
                        segment.sealed_at,
                        segment.first_position,
                        segment.last_position
                    ],
                )?;
                tx.commit()?;
                Ok(Ok(()))
            })
            .await?;
        outcome.map_err(|(numbered, placed)| {
            StoreError::Malformed(format!(
                "the live log does not hold exactly the entries of the segment to seal \
                 ({numbered} rows filed under their numbers, {placed} stored among them, \
                 {count} expected, none stored before them): run `gatehouse audit verify`"
            ))
        })
    }

    /// Removes sealed segments' rows from the live store, `PURGE_SLICE`
    /// rows per transaction in storage order so appends never wait long,
    /// each transaction recording how far it got (after a crash, the next
    /// call goes on from there): the rows removed.
    pub async fn purge_sealed(&self) -> Result<u64, StoreError> {
        let mut removed = 0u64;
        for seg in self.segments().await? {
            let Some((from, to)) = seg.awaiting_purge() else {
                continue;
            };
            let number = seg.number as i64;
            let mut from = from;
            loop {
                let (n, through) = self
                    .with(move |c| {
                        let tx = c.transaction()?;
                        let through: Option<i64> = tx.query_row(
                            "SELECT max(position) FROM (SELECT position FROM entries \
                             WHERE position >= ?1 AND position <= ?2 ORDER BY position LIMIT ?3)",
                            params![from, to, PURGE_SLICE],
                            |r| r.get(0),
                        )?;
                        let through = through.unwrap_or(to);
                        let n = tx.execute(
                            "DELETE FROM entries WHERE position >= ?1 AND position <= ?2",
                            params![from, through],
                        )?;
                        // Done: the rest of the range is empty.
                        let through = if n < PURGE_SLICE as usize {
                            to
                        } else {
                            through
                        };
                        tx.execute(
                            "UPDATE segments SET purged_through = ?2 WHERE number = ?1",
                            params![number, through],
                        )?;
                        tx.commit()?;
                        Ok((n as u64, through))
                    })
                    .await?;
                removed += n;
                if through >= to {
                    break;
                }
                from = through + 1;
            }
        }
        Ok(removed)
    }

    /// Records that segment `number` was archived to `to` at `at`.
    pub async fn segment_archived(
        &self,
        number: u64,
        to: String,
        at: String,
    ) -> Result<(), StoreError> {
        self.with(move |c| {
            c.execute(
                "UPDATE segments SET archived_to = ?2, archived_at = ?3 WHERE number = ?1",
                params![number as i64, to, at],
            )
            .map(|_| ())
        })
        .await
    }

    fn wrap(conn: Connection) -> Self {
        Self {
            conn: Arc::new(Mutex::new(conn)),
        }
    }

    /// Runs `f` on the connection on the blocking pool.
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = self.conn.clone();
        blocking(move || {
            // A panic while holding the lock cannot leave SQLite half-written:
            // an open transaction is rolled back when it is dropped.
            let mut c = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut c).map_err(unavailable)
        })
        .await
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| unavailable(format!("evidence store task: {e}")))?
}

/// Entries and a checkpoint in one transaction.
fn write_entries(
    c: &mut Connection,
    entries: &[(u64, Vec<u8>)],
    checkpoint: Option<&StoredCheckpoint>,
) -> rusqlite::Result<()> {
    let tx = c.transaction()?;
    {
        let mut insert = tx.prepare_cached("INSERT INTO entries (seq, bytes) VALUES (?1, ?2)")?;
        for (seq, bytes) in entries {
            insert.execute(params![*seq as i64, bytes])?;
        }
    }
    if let Some(cp) = checkpoint {
        tx.prepare_cached("INSERT INTO checkpoints (size, note, state) VALUES (?1, ?2, ?3)")?
            .execute(params![cp.size as i64, cp.note, cp.state])?;
    }
    tx.commit()
}

/// A `SELECT position, seq, bytes` row. Whatever was stored is read
/// (text as its bytes; a number or NULL as no bytes), so that a changed
/// row is named by verification rather than failing the read.
fn log_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<LogRow> {
    use rusqlite::types::ValueRef;
    let bytes = match r.get_ref(2)? {
        ValueRef::Blob(b) | ValueRef::Text(b) => b.to_vec(),
        ValueRef::Null | ValueRef::Integer(_) | ValueRef::Real(_) => Vec::new(),
    };
    let seq = match r.get_ref(1)? {
        ValueRef::Integer(n) => n,
        // Not a number: filed under none (-1 is never an entry's).
        _ => -1,
    };
    Ok(LogRow {
        position: r.get(0)?,
        seq,
        bytes,
    })
}

#[async_trait]
impl EvidenceStore for SqliteEvidenceStore {
    fn append_blocking(
        &self,
        entries: &[(u64, Vec<u8>)],
        checkpoint: Option<StoredCheckpoint>,
    ) -> Result<(), StoreError> {
        let mut c = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        write_entries(&mut c, entries, checkpoint.as_ref()).map_err(unavailable)
    }

    async fn entries_after(
        &self,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Vec<LogRow>, StoreError> {
        self.with(move |c| {
            let mut st = c.prepare_cached(
                "SELECT position, seq, bytes FROM entries WHERE position > ?1 ORDER BY position LIMIT ?2",
            )?;
            let rows = st.query_map(
                params![after.unwrap_or(i64::MIN), limit as i64],
                log_row,
            )?;
            rows.collect()
        })
        .await
    }

    async fn entries_from(&self, first: u64, limit: usize) -> Result<Vec<LogRow>, StoreError> {
        self.with(move |c| {
            let mut st = c.prepare_cached(
                "SELECT position, seq, bytes FROM entries WHERE seq >= ?1 ORDER BY seq, position LIMIT ?2",
            )?;
            let rows = st.query_map(params![first as i64, limit as i64], log_row)?;
            rows.collect()
        })
        .await
    }

    async fn checkpoints(&self) -> Result<Vec<String>, StoreError> {
        self.with(|c| {
            let mut st = c.prepare("SELECT note FROM checkpoints ORDER BY position")?;
            let rows = st.query_map([], |r| r.get(0))?;
            rows.collect()
        })
        .await
    }

    async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        self.with(|c| {
            c.query_row(
                // The largest: a copy of an older one stored later is not newer.
                "SELECT size, note, state FROM checkpoints ORDER BY size DESC, position DESC LIMIT 1",
                [],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<Vec<u8>>>(2)?,
                    ))
                },
            )
            .optional()
        })
        .await
        .map(|row| {
            row.and_then(|(size, note, state)| {
                Some(StoredCheckpoint {
                    size: u64::try_from(size).ok()?,
                    note,
                    state: state?,
                })
            })
        })
    }

    async fn last_position(&self) -> Result<Option<i64>, StoreError> {
        self.with(|c| {
            c.query_row("SELECT MAX(position) FROM entries", [], |r| {
                r.get::<_, Option<i64>>(0)
            })
            .optional()
            .map(Option::flatten)
        })
        .await
    }

    async fn last_seq(&self) -> Result<Option<u64>, StoreError> {
        self.with(|c| {
            c.query_row("SELECT MAX(seq) FROM entries", [], |r| {
                r.get::<_, Option<i64>>(0)
            })
            .optional()
            .map(|v| v.flatten().map(|s| s as u64))
        })
        .await
    }
}
