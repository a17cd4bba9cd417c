//! A decided channel relayed between the caller and the target.
//!
//! Four parts run side by side: a reader and a writer for each direction,
//! joined by a queue. A reader never waits for the other side's window, so
//! it keeps draining its channel while the writer waits. This matters:
//! russh reads a whole connection in one loop and grants the peer window
//! as data arrives, not as it is consumed, so a channel nobody drains
//! stalls every channel of that connection, window adjustments included;
//! a command that echoes its input (`cat`) would then deadlock, its output
//! waiting for the caller's window adjustments queued behind its input.
//! The caller's input waiting for the host is held up to 32 MiB per
//! channel; past that the reader waits for the host to take some, and a
//! host that takes none for 30 s cuts the channel (rather than stall the
//! connection). Output waits in a bounded queue: the host's window then
//! slows it, as the caller's reading does.
//!
//! The target's output is masked on its way to the caller and recorded as
//! the caller got it; the caller's input is counted, not recorded (on a
//! terminal its echo is in the output; a password typed without echo is
//! kept nowhere). A recording that reaches its limit, or cannot be
//! written, cuts the channel: what is not recorded is not relayed.

use crate::masking::OutputMask;
use bytes::Bytes;
use gatehouse_session::recording::{Cast, Stdio};
use gatehouse_session::Session;
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf, Sig};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// How long the other parts may go on once one side is done (the peer's
/// close on its way).
const GRACE: Duration = Duration::from_secs(5);
/// How long output queued for a slow caller may take to go out once the
/// host has closed.
const DRAIN: Duration = Duration::from_secs(60);
/// Messages the output queue holds (packets of at most 32 KiB).
const QUEUE: usize = 64;
/// The gateway's own sftp answers waiting for the caller.
const REPLIES_BUDGET: usize = 1 << 20;
/// Input held for the host, per channel, before the reader waits.
const INPUT_BACKLOG: usize = 32 << 20;
/// How long the host may take none of a full input backlog.
const INPUT_STALL: Duration = Duration::from_secs(30);

/// What a channel carries, which decides how it is relayed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Carries {
    /// A shell or command on a terminal: output masked, a pause releases
    /// a partial line (a prompt).
    Terminal,
    /// A command without a terminal: output masked line by line.
    Command,
    /// Bytes that are not text (sftp, a legacy scp, a forwarded
    /// connection): stdout relayed as it is, counted; stderr is text.
    Bytes,
}

impl Carries {
    /// How long output may pause before a partial line goes out.
    fn quiet(self) -> Duration {
        match self {
            Self::Terminal => Duration::from_millis(50),
            _ => Duration::from_secs(1),
        }
    }
}

/// How a channel ended.
#[derive(Debug, Default)]
pub(crate) struct Relayed {
    /// Bytes the caller sent, and the target's stdout and stderr.
    pub(crate) bytes: [u64; 3],
    /// The command's exit status.
    pub(crate) exit_status: Option<u32>,
    /// The signal that ended it.
    pub(crate) exit_signal: Option<String>,
    /// Why the gateway cut the channel.
    pub(crate) cut: Option<String>,
    /// The target refused the request (the command, shell or subsystem).
    pub(crate) refused_by_target: bool,
    /// Values masked in the output.
    pub(crate) masked: u64,
}

/// The recording being made.
pub(crate) struct Recording {
    pub(crate) cast: Mutex<Cast>,
    pub(crate) sink: mpsc::Sender<Vec<u8>>,
}

impl Recording {
    /// Records with `f`, then writes what is ready. `Err` when the
    /// recording reached its limit or its file failed.
    async fn record(&self, f: impl FnOnce(&mut Cast)) -> Result<(), String> {
        let (ready, truncated, limit) = {
            let mut cast = self.cast.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut cast);
            (cast.ready(), cast.truncated(), cast.limit())
        };
        if !ready.is_empty() && self.sink.send(ready).await.is_err() {
            return Err("the recording could not be written".into());
        }
        if truncated {
            return Err(format!(
                "the recording reached its limit ({limit} bytes, recording_limit)"
            ));
        }
        Ok(())
    }
}

/// The caller's side of the channel.
pub(crate) struct CallerSide {
    pub(crate) read: ChannelReadHalf,
    pub(crate) write: ChannelWriteHalf<russh::server::Msg>,
    pub(crate) handle: russh::server::Handle,
}

/// The target's side.
pub(crate) struct TargetSide {
    pub(crate) read: ChannelReadHalf,
    pub(crate) write: ChannelWriteHalf<russh::client::Msg>,
}

/// How a channel is relayed.
pub(crate) struct Plan {
    pub(crate) carries: Carries,
    /// Masks what the caller gets (text channels).
    pub(crate) engine: Arc<gatehouse_mask::MaskingEngine>,
    pub(crate) recording: Option<Arc<Recording>>,
    /// What the caller sent while its action was held, sent first.
    pub(crate) early: Vec<ChannelMsg>,
    /// The sftp subsystem's reader, on an sftp channel.
    pub(crate) sftp: Option<Arc<crate::sftp::SftpGate>>,
}

/// What goes to the target, in order.
enum ToTarget {
    Data(Bytes),
    Eof,
    WindowChange(u32, u32, u32, u32),
    Signal(Sig),
}

/// What goes to the caller, in order.
enum ToCaller {
    /// Output on stdout (`0`) or stderr (`1`), masked where it is text
    /// (bytes relayed as they are pass without a copy).
    Out(usize, Bytes),
    ExitStatus(u32),
    ExitSignal {
        signal: Sig,
        core_dumped: bool,
        message: String,
        lang: String,
    },
    Eof,
    /// The target's side has ended: the caller's side is closed (the
    /// caller's reader may still hold a sender, for sftp replies).
    End,
}

/// Relays until both sides have closed (or one has, and the rest did not
/// follow within a few seconds).
pub(crate) async fn relay(
    session: &Session,
    caller: CallerSide,
    target: TargetSide,
    plan: Plan,
) -> Relayed {
    let Plan {
        carries,
        engine,
        recording,
        early,
        sftp,
    } = plan;
    let state = Mutex::new(Relayed::default());
    let CallerSide {
        read: mut caller_read,
        write: caller_write,
        handle,
    } = caller;
    let TargetSide {
        read: mut target_read,
        write: target_write,
    } = target;
    let state = &state;
    let recording = recording.as_deref();
    let sftp = sftp.as_deref();
    // Input for the host: unbounded as a queue, bounded by INPUT_BACKLOG in
    // bytes (the reader waits past it).
    let (to_target, mut for_target) = mpsc::unbounded_channel::<(ToTarget, usize)>();
    let backlog = std::sync::atomic::AtomicUsize::new(0);
    let taken = tokio::sync::Notify::new();
    let (backlog, taken) = (&backlog, &taken);
    let (to_caller, mut for_caller) = mpsc::channel::<ToCaller>(QUEUE);
    // The gateway's own sftp replies: a lane of their own, so the caller's
    // reader never waits for the caller's window (a budget bounds it).
    let (to_caller_replies, mut for_caller_replies) = mpsc::unbounded_channel::<Vec<u8>>();
    let replies_held = std::sync::atomic::AtomicUsize::new(0);
    let replies_held = &replies_held;
    let cut = |why: String| {
        let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
        s.cut.get_or_insert(why);
    };

    // The caller's input: counted, passed to the target's writer (an sftp
    // stream read for decisions first).
    let caller_reader = {
        async move {
            let mut early = early.into_iter();
            loop {
                // What the caller sent while its action was held goes first.
                let msg = match early.next() {
                    Some(m) => m,
                    None => match caller_read.wait().await {
                        Some(m) => m,
                        None => break,
                    },
                };
                let next = match msg {
                    ChannelMsg::Data { data } => {
                        session.counters().read(data.len());
                        state.lock().unwrap_or_else(|p| p.into_inner()).bytes[0] +=
                            data.len() as u64;
                        if let Some(gate) = sftp {
                            match gate.caller_sent(&data).await {
                                Ok((forward, replies)) => {
                                    if !replies.is_empty() {
                                        let held = replies_held.fetch_add(
                                            replies.len(),
                                            std::sync::atomic::Ordering::AcqRel,
                                        );
                                        if held > REPLIES_BUDGET {
                                            cut("the caller reads none of the gateway's sftp answers".into());
                                            break;
                                        }
                                        if to_caller_replies.send(replies).is_err() {
                                            break;
                                        }
                                    }
                                    if forward.is_empty() {
                                        continue;
                                    }
                                    ToTarget::Data(Bytes::from(forward))
                                }
                                Err(why) => {
                                    cut(why);
                                    break;
                                }
                            }
                        } else {
                            ToTarget::Data(data)
                        }
                    }
                    ChannelMsg::Eof => ToTarget::Eof,
                    ChannelMsg::WindowChange {
                        col_width,
                        row_height,
                        pix_width,
                        pix_height,
                    } => {
                        if let Some(r) = recording {
                            // A resize is small: it never fills the recording alone.
                            let _ = r.record(|c| c.resize(col_width, row_height)).await;
                        }
                        ToTarget::WindowChange(col_width, row_height, pix_width, pix_height)
                    }
                    ChannelMsg::Signal { signal } => ToTarget::Signal(signal),
                    ChannelMsg::Close => break,
                    _ => continue,
                };
                // Every message is charged its overhead too, so small ones
                // (resizes, signals, one-byte packets) cannot pile up free.
                let size = match &next {
                    ToTarget::Data(d) => d.len() + 64,
                    _ => 64,
                };
                backlog.fetch_add(size, std::sync::atomic::Ordering::AcqRel);
                if to_target.send((next, size)).is_err() {
                    break;
                }
                // Past the backlog, wait for the host to take some input.
                while backlog.load(std::sync::atomic::Ordering::Acquire) >= INPUT_BACKLOG {
                    if tokio::time::timeout(INPUT_STALL, taken.notified())
                        .await
                        .is_err()
                    {
                        cut(format!(
                            "the host took none of {} MiB of input in {} s",
                            INPUT_BACKLOG >> 20,
                            INPUT_STALL.as_secs()
                        ));
                        return;
                    }
                }
            }
            // Dropping the sender ends the target's writer, which closes.
        }
    };

    let target_writer = async {
        while let Some((m, size)) = for_target.recv().await {
            let sent = match m {
                ToTarget::Data(d) => target_write.data_bytes(d).await,
                ToTarget::Eof => target_write.eof().await,
                ToTarget::WindowChange(c, r, pw, ph) => {
                    target_write.window_change(c, r, pw, ph).await
                }
                ToTarget::Signal(s) => target_write.signal(s).await,
            };
            backlog.fetch_sub(size, std::sync::atomic::Ordering::AcqRel);
            taken.notify_one();
            if sent.is_err() {
                break;
            }
        }
        let _ = target_write.close().await;
    };

    // The target's output: masked and recorded, passed to the caller's writer.
    let target_reader = {
        let engine = engine.clone();
        async move {
            let mut masks = [OutputMask::new(engine.clone()), OutputMask::new(engine)];
            let quiet = carries.quiet();
            loop {
                let held = masks.iter().any(|m| m.held() > 0);
                let msg = tokio::select! {
                    m = target_read.wait() => m,
                    () = tokio::time::sleep(quiet), if held => {
                        // Quiet: what was held goes out masked as it stands.
                        if flush(&mut masks, recording, &to_caller, state).await.is_err() {
                            break;
                        }
                        continue;
                    }
                };
                let Some(msg) = msg else { break };
                let (i, data) = match msg {
                    ChannelMsg::Data { data } => (0, data),
                    ChannelMsg::ExtendedData { data, ext: 1 } => (1, data),
                    ChannelMsg::ExtendedData { .. } => continue,
                    ChannelMsg::ExitStatus { exit_status } => {
                        if flush(&mut masks, recording, &to_caller, state)
                            .await
                            .is_err()
                        {
                            break;
                        }
                        state.lock().unwrap_or_else(|p| p.into_inner()).exit_status =
                            Some(exit_status);
                        if to_caller
                            .send(ToCaller::ExitStatus(exit_status))
                            .await
                            .is_err()
                        {
                            break;
                        }
                        continue;
                    }
                    ChannelMsg::ExitSignal {
                        signal_name,
                        core_dumped,
                        error_message,
                        lang_tag,
                    } => {
                        if flush(&mut masks, recording, &to_caller, state)
                            .await
                            .is_err()
                        {
                            break;
                        }
                        state.lock().unwrap_or_else(|p| p.into_inner()).exit_signal =
                            Some(format!("{signal_name:?}"));
                        let m = ToCaller::ExitSignal {
                            signal: signal_name,
                            core_dumped,
                            message: error_message,
                            lang: lang_tag,
                        };
                        if to_caller.send(m).await.is_err() {
                            break;
                        }
                        continue;
                    }
                    ChannelMsg::Failure => {
                        state
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .refused_by_target = true;
                        let note = b"gatehouse: the host refused the request\r\n".to_vec();
                        let _ = to_caller.send(ToCaller::Out(1, Bytes::from(note))).await;
                        let _ = to_caller.send(ToCaller::ExitStatus(255)).await;
                        break;
                    }
                    ChannelMsg::Eof => {
                        if flush(&mut masks, recording, &to_caller, state)
                            .await
                            .is_err()
                            || to_caller.send(ToCaller::Eof).await.is_err()
                        {
                            break;
                        }
                        continue;
                    }
                    ChannelMsg::Close => break,
                    _ => continue,
                };
                state.lock().unwrap_or_else(|p| p.into_inner()).bytes[i + 1] += data.len() as u64;
                let out = match (sftp, carries, i) {
                    (Some(gate), _, 0) => {
                        let mut out = Vec::new();
                        if let Err(why) = gate.host_sent(&data, &mut out).await {
                            cut(why);
                            break;
                        }
                        ToCaller::Out(0, Bytes::from(out))
                    }
                    (None, Carries::Bytes, 0) => ToCaller::Out(0, data),
                    _ => {
                        let mut out = Vec::new();
                        masks[i].feed(&data, &mut out);
                        if let Err(why) = record(recording, i, &out).await {
                            cut(why);
                            break;
                        }
                        ToCaller::Out(i, Bytes::from(out))
                    }
                };
                if matches!(&out, ToCaller::Out(_, b) if b.is_empty()) {
                    continue;
                }
                if to_caller.send(out).await.is_err() {
                    break;
                }
            }
            let _ = flush(&mut masks, recording, &to_caller, state).await;
            let masked: u64 = masks.iter().map(|m| m.masked).sum();
            state.lock().unwrap_or_else(|p| p.into_inner()).masked = masked;
            let _ = to_caller.send(ToCaller::End).await;
        }
    };

    let caller_writer = async {
        loop {
            let m = tokio::select! {
                biased;
                Some(reply) = for_caller_replies.recv() => {
                    replies_held.fetch_sub(reply.len(), std::sync::atomic::Ordering::AcqRel);
                    ToCaller::Out(0, Bytes::from(reply))
                }
                m = for_caller.recv() => match m {
                    Some(m) => m,
                    None => break,
                },
            };
            let sent = match m {
                ToCaller::Out(i, out) => {
                    session.counters().written(out.len());
                    if i == 0 {
                        caller_write.data(&out[..]).await
                    } else {
                        caller_write.extended_data(1, &out[..]).await
                    }
                    .map_err(|_| ())
                }
                ToCaller::ExitStatus(s) => caller_write.exit_status(s).await.map_err(|_| ()),
                ToCaller::ExitSignal {
                    signal,
                    core_dumped,
                    message,
                    lang,
                } => handle
                    .exit_signal_request(caller_write.id(), signal, core_dumped, message, lang)
                    .await
                    .map_err(|_| ()),
                ToCaller::Eof => caller_write.eof().await.map_err(|_| ()),
                ToCaller::End => break,
            };
            if sent.is_err() {
                break;
            }
        }
        let why = state.lock().unwrap_or_else(|p| p.into_inner()).cut.clone();
        if let Some(why) = why {
            let note = format!("\r\ngatehouse: the channel was cut: {why}\r\n");
            let _ = caller_write.extended_data(1, note.as_bytes()).await;
            let _ = caller_write.exit_status(255).await;
        }
        let _ = caller_write.eof().await;
        let _ = caller_write.close().await;
    };

    let caller_done = {
        let mut parts = [
            std::pin::pin!(caller_reader)
                as std::pin::Pin<&mut (dyn std::future::Future<Output = ()> + Send)>,
            std::pin::pin!(target_writer),
            std::pin::pin!(target_reader),
            std::pin::pin!(caller_writer),
        ];
        let mut done = [false; 4];
        let mut deadline: Option<tokio::time::Instant> = None;
        while !done.iter().all(|d| *d) {
            let grace = async {
                match deadline {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            let [a, b, c, d] = &mut parts;
            tokio::select! {
                () = a.as_mut(), if !done[0] => done[0] = true,
                () = b.as_mut(), if !done[1] => done[1] = true,
                () = c.as_mut(), if !done[2] => done[2] = true,
                () = d.as_mut(), if !done[3] => done[3] = true,
                () = grace => break,
            }
            // Once a writer has closed its side (all it had was delivered),
            // the caller has gone, or the channel was cut, the rest have a
            // few seconds to follow. Once the host has closed, the caller's
            // writer has longer to deliver what is queued to a slow caller.
            let cut_now = state
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .cut
                .is_some();
            let wait = if done[0] || done[1] || done[3] || cut_now {
                Some(GRACE)
            } else if done[2] {
                Some(DRAIN)
            } else {
                None
            };
            if let Some(wait) = wait {
                let until = tokio::time::Instant::now() + wait;
                deadline = Some(deadline.map_or(until, |d| d.min(until)));
            }
        }
        done[3]
    };
    if !caller_done {
        // The caller's writer never finished (a cut while the host's side
        // was stuck): the caller still learns why.
        let why = state.lock().unwrap_or_else(|p| p.into_inner()).cut.clone();
        let tell = async {
            if let Some(why) = why {
                let note = format!("\r\ngatehouse: the channel was cut: {why}\r\n");
                let _ = caller_write.extended_data(1, note.as_bytes()).await;
                let _ = caller_write.exit_status(255).await;
            }
            let _ = caller_write.eof().await;
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), tell).await;
    }
    let _ = target_write.close().await;
    let _ = caller_write.close().await;
    let relayed = std::mem::take(&mut *state.lock().unwrap_or_else(|p| p.into_inner()));
    relayed
}

/// Records output sent on stdout (`0`) or stderr (`1`).
async fn record(recording: Option<&Recording>, i: usize, out: &[u8]) -> Result<(), String> {
    match recording {
        Some(r) if !out.is_empty() => {
            let which = if i == 0 { Stdio::Stdout } else { Stdio::Stderr };
            r.record(|c| c.data(which, out)).await
        }
        _ => Ok(()),
    }
}

/// Sends what the masks hold, masked as it stands, and records it.
async fn flush(
    masks: &mut [OutputMask; 2],
    recording: Option<&Recording>,
    to_caller: &mpsc::Sender<ToCaller>,
    state: &Mutex<Relayed>,
) -> Result<(), ()> {
    for (i, m) in masks.iter_mut().enumerate() {
        let mut out = Vec::new();
        m.flush(&mut out);
        if out.is_empty() {
            continue;
        }
        if let Err(why) = record(recording, i, &out).await {
            let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
            s.cut.get_or_insert(why);
            return Err(());
        }
        to_caller
            .send(ToCaller::Out(i, Bytes::from(out)))
            .await
            .map_err(|_| ())?;
    }
    Ok(())
}

/// Relays two channels as bytes (a forwarded connection, an agent
/// connection): nothing masked or recorded but their byte counts.
pub(crate) async fn relay_bytes(
    session: &Session,
    caller: russh::Channel<russh::server::Msg>,
    target: russh::Channel<russh::client::Msg>,
    handle: russh::server::Handle,
    engine: Arc<gatehouse_mask::MaskingEngine>,
) -> Relayed {
    let (read, write) = caller.split();
    let (up_read, up_write) = target.split();
    relay(
        session,
        CallerSide {
            read,
            write,
            handle,
        },
        TargetSide {
            read: up_read,
            write: up_write,
        },
        Plan {
            carries: Carries::Bytes,
            engine,
            recording: None,
            early: Vec::new(),
            sftp: None,
        },
    )
    .await
}

impl Relayed {
    /// A bytes channel's result as recorded: byte counts each way, under
    /// `protocol`, with `forwarded` (an `address:port`) where it names one.
    pub(crate) fn bytes_record(
        &self,
        protocol: &str,
        forwarded: Option<String>,
    ) -> (gatehouse_core::ActionOutcome, gatehouse_core::StreamRecord) {
        let [from_caller, to_caller, _] = self.bytes;
        let stream = gatehouse_core::StreamRecord {
            protocol: protocol.into(),
            stdin_bytes: from_caller,
            stdout_bytes: to_caller,
            forwarded: forwarded
                .map(|f| vec![(f, from_caller + to_caller)])
                .unwrap_or_default(),
            ..gatehouse_core::StreamRecord::default()
        };
        let outcome = gatehouse_core::ActionOutcome::Ok {
            summary: format!("{from_caller} bytes from the caller, {to_caller} to it"),
            count: None,
        };
        (outcome, stream)
    }
}
