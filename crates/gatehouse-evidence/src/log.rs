//! The node's log writer: one task that numbers events, links and hashes
//! them, commits them in groups and signs checkpoints.
//!
//! Callers hand over events and wait for the acknowledgement: an
//! acknowledged event is durable in the store. Whatever queued while a commit
//! was in progress goes into the next one (group commit), so under load one
//! transaction and one fsync carry many events. A failed commit fails every
//! request in it; the writer then checks the store's last sequence number
//! before trusting its own state again.

use crate::entry::encode_fields;
use crate::merkle::{leaf_hash, Frontier, Hash};
use crate::note::{Checkpoint, SigningKey};
use crate::witness::Witness;
use crate::EvidenceError;
use async_trait::async_trait;
use gatehouse_core::{AuditError, AuditEvent, AuditTrail, EvidenceStore, PendingAppend};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

/// How a node writes its log.
#[derive(Clone)]
pub struct LogSettings {
    /// This node's name, in every entry.
    pub node: String,
    /// The log's origin line in checkpoints.
    pub origin: String,
    /// Sign a checkpoint once this many entries are uncovered.
    pub checkpoint_every: u64,
    /// …or once this much time has passed with uncovered entries.
    pub checkpoint_interval: Duration,
    /// Where checkpoints are also published.
    pub witnesses: Vec<Arc<dyn Witness>>,
}

/// Requests queued for the writer; beyond this, appenders wait (backpressure).
const QUEUE: usize = 4096;
/// Requests taken into one commit at most.
const GROUP: usize = 1024;
/// Events written without waiting are committed at the latest this late…
const RECORD_DELAY: Duration = Duration::from_millis(200);
/// …or once this many wait.
const RECORD_BATCH: usize = 4096;
/// Events written without waiting that the writer keeps while the store
/// cannot be written (a full disk): beyond this many the oldest are dropped,
/// with an error, so an outage cannot exhaust memory.
const RECORD_KEPT: usize = 65_536;
/// How long stopping waits for witnesses to take the final checkpoint.
const WITNESS_GRACE: Duration = Duration::from_secs(5);

/// Where a request's outcome is reported.
type Ack = oneshot::Sender<Result<(), AuditError>>;

enum Command {
    Append(Vec<AuditEvent>, Ack),
    /// Events nothing waits for: written with the next commit.
    Record(Vec<AuditEvent>),
    Close(oneshot::Sender<()>),
    /// Commit what waits and sign a checkpoint over it; answers the size covered.
    Seal(oneshot::Sender<Result<u64, String>>),
}

/// A handle to the node's evidence log; cheap to clone.
#[derive(Clone)]
pub struct EvidenceLog {
    tx: mpsc::Sender<Command>,
    committed: watch::Receiver<u64>,
    /// [`AuditTrail::enqueue`] answers once its events are durable.
    write_ahead_reads: bool,
}

/// Encoded entries of recorded events, and the head after them.
struct Unwritten {
    rows: Vec<(u64, Vec<u8>)>,
    head: Head,
}

/// The tree state the writer extends.
#[derive(Clone)]
struct Head {
    next_seq: u64,
    prev: Hash,
    frontier: Frontier,
}

impl Head {
    /// A checkpoint of this head signed as `note`, with the state a restart
    /// resumes from.
    fn checkpoint(&self, note: String) -> gatehouse_core::StoredCheckpoint {
        gatehouse_core::StoredCheckpoint {
            size: self.frontier.size(),
            note,
            state: self.frontier.state(&self.prev),
        }
    }
}

struct Writer {
    store: Arc<dyn EvidenceStore>,
    key: SigningKey,
    settings: LogSettings,
    head: Head,
    /// Entries covered by the newest stored checkpoint.
    checkpointed: u64,
    /// The newest checkpoint has no stored state (a log verified whole):
    /// the first seal writes one even when no entry is uncovered.
    state_missing: bool,
    /// After a failed commit: the head that commit would have made, if it
    /// was in fact written. Resolved against the store before the next one.
    uncertain: Option<Head>,
    /// Set when the store no longer matches the writer: nothing more is accepted.
    broken: Option<String>,
    /// Events queued with [`AuditTrail::record`], not yet committed.
    recorded: Vec<AuditEvent>,
    /// Recorded events a failed commit carried, encoded from `head`: sent
    /// again first with the next commit unless that commit turns out to have
    /// been written (nothing waits for them, so nothing else would).
    unwritten: Option<Unwritten>,
    witnesses: Vec<watch::Sender<Option<Arc<str>>>>,
    witness_tasks: Vec<JoinHandle<()>>,
    /// How many entries the store durably holds; live sinks follow it.
    committed: watch::Sender<u64>,
}

impl EvidenceLog {
    /// Opens the log in `store`: verifies what is there against `key` (a log
    /// that does not verify is not extended, since new checkpoints would sign
    /// over the damage), then starts the writer. The task ends after
    /// [`EvidenceLog::close`].
    pub async fn open(
        store: Arc<dyn EvidenceStore>,
        key: SigningKey,
        settings: LogSettings,
    ) -> Result<(Self, JoinHandle<()>), EvidenceError> {
        let unavailable = |e: gatehouse_core::StoreError| EvidenceError::Store(e.to_string());
        // From the newest checkpoint's stored state, reading only what came
        // after it; a log without one (new, or written before the state was
        // kept) is verified whole once.
        let resumable = store.latest_checkpoint().await.map_err(unavailable)?;
        let state_missing = resumable.is_none();
        let r = match resumable {
            Some(cp) => {
                let r = crate::resume::resume(&*store, &cp, &key.verifier()).await?;
                tracing::info!(
                    entries = r.next_seq,
                    read = r.read,
                    "evidence log resumed from its newest checkpoint"
                );
                r
            }
            None => crate::resume::verified_whole(&*store, &key.verifier()).await?,
        };
        let checkpointed = r.checkpointed;
        let head = Head {
            next_seq: r.next_seq,
            prev: r.prev,
            frontier: r.frontier,
        };
        let mut witnesses = Vec::new();
        let mut witness_tasks = Vec::new();
        for w in &settings.witnesses {
            let (tx, rx) = watch::channel(None);
            witnesses.push(tx);
            witness_tasks.push(tokio::spawn(publish_to(w.clone(), rx)));
        }
        let (committed, committed_rx) = watch::channel(head.next_seq);
        let writer = Writer {
            store,
            key,
            settings,
            head,
            checkpointed,
            state_missing,
            uncertain: None,
            broken: None,
            recorded: Vec::new(),
            unwritten: None,
            witnesses,
            witness_tasks,
            committed,
        };
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = spawn_writer(writer, rx)?;
        Ok((
            Self {
                tx,
                committed: committed_rx,
                write_ahead_reads: false,
            },
            task,
        ))
    }

    /// With `yes`, [`AuditTrail::enqueue`] returns only once its events are
    /// durable, like [`AuditTrail::append`]: actions that only read then
    /// wait for their events too instead of running while they are written
    /// (`[evidence] write_ahead_reads`).
    pub fn writing_reads_ahead(mut self, yes: bool) -> Self {
        self.write_ahead_reads = yes;
        self
    }

    /// Follows how many entries are durably stored (their sequence numbers
    /// are below the value). The sender is dropped when the writer stops.
    pub fn committed(&self) -> watch::Receiver<u64> {
        self.committed.clone()
    }

    /// Writes what is queued and signs a checkpoint covering every entry
    /// now in the log (none when the newest already does); returns how many
    /// entries the newest checkpoint covers. An evidence pack asks for this
    /// so that it can prove events of the last seconds without waiting for
    /// `checkpoint_interval`.
    pub async fn seal(&self) -> Result<u64, EvidenceError> {
        let stopped = || EvidenceError::Store("the evidence log writer has stopped".into());
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Seal(tx))
            .await
            .map_err(|_| stopped())?;
        rx.await
            .map_err(|_| stopped())?
            .map_err(EvidenceError::Store)
    }

    /// Writes what is queued, signs a final checkpoint, hands it to the
    /// witnesses and stops the writer.
    pub async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Command::Close(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

#[async_trait]
impl AuditTrail for EvidenceLog {
    async fn append(&self, events: Vec<AuditEvent>) -> Result<(), AuditError> {
        self.enqueue(events).await?.durable().await
    }

    async fn enqueue(&self, events: Vec<AuditEvent>) -> Result<PendingAppend, AuditError> {
        if events.is_empty() {
            return Ok(PendingAppend::settled(Ok(())));
        }
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Append(events, tx))
            .await
            .map_err(|_| AuditError("the evidence log writer has stopped".into()))?;
        let pending = PendingAppend::waiting(rx);
        if self.write_ahead_reads {
            return Ok(PendingAppend::settled(pending.durable().await));
        }
        Ok(pending)
    }

    async fn record(&self, events: Vec<AuditEvent>) -> Result<(), AuditError> {
        if events.is_empty() {
            return Ok(());
        }
        self.tx
            .send(Command::Record(events))
            .await
            .map_err(|_| AuditError("the evidence log writer has stopped".into()))
    }
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let mut ticker = tokio::time::interval_at(
            Instant::now() + self.settings.checkpoint_interval,
            self.settings.checkpoint_interval,
        );
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut flush = tokio::time::interval(RECORD_DELAY);
        flush.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // A tail left uncovered by the last run is sealed at once.
        self.checkpoint_now().await;
        let mut commands = Vec::with_capacity(GROUP);
        let closing = loop {
            tokio::select! {
                n = rx.recv_many(&mut commands, GROUP) => {
                    if n == 0 {
                        break None;
                    }
                    let mut appends = Vec::with_capacity(n);
                    let mut closing = None;
                    let mut seals = Vec::new();
                    for c in commands.drain(..) {
                        match c {
                            Command::Append(events, ack) => appends.push((events, ack)),
                            Command::Record(events) => self.recorded.extend(events),
                            Command::Close(done) => closing = Some(done),
                            Command::Seal(answer) => seals.push(answer),
                        }
                    }
                    if !appends.is_empty() || self.recorded.len() >= RECORD_BATCH || !seals.is_empty() {
                        self.commit(appends).await;
                    }
                    if !seals.is_empty() {
                        let sealed = self.seal().await;
                        for answer in seals {
                            let _ = answer.send(sealed.clone());
                        }
                    }
                    if closing.is_some() {
                        break closing;
                    }
                }
                _ = ticker.tick() => self.checkpoint_now().await,
                _ = flush.tick(), if !self.recorded.is_empty() || self.unwritten.is_some() => {
                    self.commit(Vec::new()).await
                }
            }
        };
        // Closed, or every handle dropped: write what waits, seal, hand over.
        self.commit(Vec::new()).await;
        self.checkpoint_now().await;
        self.stop_witnesses().await;
        if let Some(done) = closing {
            let _ = done.send(());
        }
    }

    /// Commits one group of requests and acknowledges each.
    async fn commit(&mut self, appends: Vec<(Vec<AuditEvent>, Ack)>) {
        if let Err(e) = self.settle().await {
            for (_, ack) in appends {
                let _ = ack.send(Err(e.clone()));
            }
            self.keep_recorded_bounded();
            return;
        }
        // What a failed commit carried of recorded events goes first, as
        // encoded then (the head has not moved since).
        let (mut head, mut rows) = match self.unwritten.take() {
            Some(u) => (u.head, u.rows),
            None => (self.head.clone(), Vec::new()),
        };
        // While earlier ones wait unwritten, at most RECORD_KEPT are held.
        let room = RECORD_KEPT.saturating_sub(rows.len());
        if self.recorded.len() > room {
            tracing::error!(
                dropped = self.recorded.len() - room,
                "the evidence log cannot be written; dropping the newest queued result events \
                 beyond the {RECORD_KEPT} it keeps"
            );
            self.recorded.truncate(room);
        }
        // Events recorded without waiting came first: they go first.
        for ev in std::mem::take(&mut self.recorded) {
            let (saved, len) = (head.clone(), rows.len());
            if let Err(e) = self.encode(&mut head, &mut rows, std::iter::once(ev)) {
                tracing::error!(error = %e, "an event could not be encoded and was dropped");
                head = saved;
                rows.truncate(len);
            }
        }
        let (recorded_rows, after_recorded) = (rows.len(), head.clone());
        let mut acks = Vec::with_capacity(appends.len());
        for (events, ack) in appends {
            let (saved, len) = (head.clone(), rows.len());
            match self.encode(&mut head, &mut rows, events) {
                Ok(()) => acks.push(ack),
                Err(e) => {
                    // One caller's bad event fails that caller alone.
                    head = saved;
                    rows.truncate(len);
                    let _ = ack.send(Err(AuditError(e.to_string())));
                }
            }
        }
        if rows.is_empty() {
            for ack in acks {
                let _ = ack.send(Ok(()));
            }
            return;
        }
        let due = head.frontier.size() - self.checkpointed >= self.settings.checkpoint_every;
        let note = due.then(|| self.sign(&head));
        let count = rows.len();
        // On the writer's own thread (see `spawn_writer`): no hop to a pool.
        let stored = self
            .store
            .append_blocking(&rows, note.clone().map(|n| head.checkpoint(n)));
        match stored {
            Ok(()) => {
                self.head = head;
                self.committed.send_replace(self.head.next_seq);
                if let Some(note) = note {
                    self.checkpointed = self.head.frontier.size();
                    self.state_missing = false;
                    self.publish(note);
                }
                for ack in acks {
                    let _ = ack.send(Ok(()));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, entries = count, "could not write to the evidence log; refusing the actions");
                self.uncertain = Some(head);
                // The write-ahead callers are refused (they act on it); the
                // recorded events are kept to be written once the store can.
                if recorded_rows > 0 {
                    rows.truncate(recorded_rows);
                    self.unwritten = Some(Unwritten {
                        rows,
                        head: after_recorded,
                    });
                }
                let e = AuditError(e.to_string());
                for ack in acks {
                    let _ = ack.send(Err(e.clone()));
                }
            }
        }
    }

    /// While the store cannot be written, keeps at most [`RECORD_KEPT`]
    /// recorded events (the newest), saying how many it drops.
    fn keep_recorded_bounded(&mut self) {
        let kept = self.unwritten.as_ref().map_or(0, |u| u.rows.len());
        let room = RECORD_KEPT.saturating_sub(kept);
        if self.recorded.len() > room {
            let dropped = self.recorded.len() - room;
            tracing::error!(
                dropped,
                "the evidence log cannot be written; dropping the oldest queued result events"
            );
            self.recorded.drain(..dropped);
        }
    }

    fn encode(
        &self,
        head: &mut Head,
        rows: &mut Vec<(u64, Vec<u8>)>,
        events: impl IntoIterator<Item = AuditEvent>,
    ) -> Result<(), EvidenceError> {
        for ev in events {
            let bytes = encode_fields(
                head.next_seq,
                &self.settings.node,
                &head.prev,
                ev.kind,
                &ev.time.rfc3339(),
                &ev.payload,
            )?;
            let leaf = leaf_hash(&bytes);
            head.frontier.push(leaf);
            head.prev = leaf;
            rows.push((head.next_seq, bytes));
            head.next_seq += 1;
        }
        Ok(())
    }

    /// After a failed commit, learns from the store whether it was written.
    async fn settle(&mut self) -> Result<(), AuditError> {
        if let Some(why) = &self.broken {
            return Err(AuditError(why.clone()));
        }
        let Some(attempted) = self.uncertain.take() else {
            return Ok(());
        };
        let last = match self.store.last_seq().await {
            Ok(last) => last,
            Err(e) => {
                self.uncertain = Some(attempted);
                return Err(AuditError(e.to_string()));
            }
        };
        let next = last.map_or(0, |s| s + 1);
        if next == attempted.next_seq {
            self.head = attempted;
            self.committed.send_replace(self.head.next_seq);
            // Written after all: what it carried must not be sent twice.
            self.unwritten = None;
        } else if next != self.head.next_seq {
            let why = format!(
                "the evidence store holds entries up to {next} but this gateway wrote up to {}; \
                 it was changed underneath the gateway: restart it (start-up verifies the log)",
                self.head.next_seq
            );
            tracing::error!("{why}");
            self.broken = Some(why.clone());
            return Err(AuditError(why));
        }
        Ok(())
    }

    fn sign(&self, head: &Head) -> String {
        self.key.sign(&Checkpoint {
            origin: self.settings.origin.clone(),
            size: head.frontier.size(),
            root: head.frontier.root(),
        })
    }

    /// Signs and stores a checkpoint if entries are uncovered.
    async fn checkpoint_now(&mut self) {
        // A store that cannot be written was already reported by the commit.
        if self.settle().await.is_err() {
            return;
        }
        if let Err(e) = self.seal().await {
            tracing::error!(error = %e, "could not store an evidence log checkpoint");
        }
    }

    /// Signs and stores a checkpoint if entries are uncovered; the size the
    /// newest stored checkpoint covers, or why there is none over the head.
    async fn seal(&mut self) -> Result<u64, String> {
        self.settle().await.map_err(|e| e.0)?;
        let size = self.head.frontier.size();
        if size == self.checkpointed && (!self.state_missing || size == 0) {
            return Ok(size);
        }
        let note = self.sign(&self.head);
        self.store
            .append_blocking(&[], Some(self.head.checkpoint(note.clone())))
            .map_err(|e| e.to_string())?;
        self.checkpointed = size;
        self.state_missing = false;
        self.publish(note);
        Ok(size)
    }

    fn publish(&self, note: String) {
        let note: Arc<str> = note.into();
        for w in &self.witnesses {
            w.send_replace(Some(note.clone()));
        }
    }

    async fn stop_witnesses(&mut self) {
        self.witnesses.clear();
        for task in self.witness_tasks.drain(..) {
            if tokio::time::timeout(WITNESS_GRACE, task).await.is_err() {
                tracing::warn!("a witness did not take the final checkpoint in time");
            }
        }
    }
}

/// Runs the writer on a thread of its own with a single-threaded runtime:
/// a commit is then one wake-up from the session to this thread and one back,
/// where a task on the shared runtime also needed a hop to the blocking pool
/// and back for every SQLite transaction. The returned task ends with it.
fn spawn_writer(
    writer: Writer,
    rx: mpsc::Receiver<Command>,
) -> Result<JoinHandle<()>, EvidenceError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| EvidenceError::Store(format!("cannot start the log writer: {e}")))?;
    let (done_tx, done_rx) = oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("evidence-writer".into())
        .spawn(move || {
            rt.block_on(writer.run(rx));
            let _ = done_tx.send(());
        })
        .map_err(|e| EvidenceError::Store(format!("cannot start the log writer: {e}")))?;
    Ok(tokio::spawn(async move {
        let _ = done_rx.await;
    }))
}

/// Hands each newest checkpoint to one witness, retrying with backoff; a
/// newer checkpoint replaces one not yet delivered (it covers it).
async fn publish_to(witness: Arc<dyn Witness>, mut rx: watch::Receiver<Option<Arc<str>>>) {
    let mut delay = Duration::from_millis(500);
    while rx.changed().await.is_ok() {
        loop {
            let Some(note) = rx.borrow_and_update().clone() else {
                break;
            };
            match witness.publish(&note).await {
                Ok(()) => {
                    delay = Duration::from_millis(500);
                    break;
                }
                Err(e) => {
                    tracing::warn!(witness = %witness.name(), error = %e, "could not publish a checkpoint to a witness; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        changed = rx.changed() => if changed.is_err() { return },
                    }
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
            }
        }
    }
}
