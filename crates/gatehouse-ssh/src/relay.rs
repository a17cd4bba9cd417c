//! A decided channel relayed between the caller and the target: each
//! direction on its own (a stalled side slows only its own direction, and
//! only this channel), the target's output masked on its way to the
//! caller and recorded as the caller got it, the caller's input recorded
//! as typed. A recording that reaches its limit, or cannot be written,
//! cuts the channel: what is not recorded is not relayed.

use crate::masking::OutputMask;
use gatehouse_session::recording::{Cast, Stdio};
use gatehouse_session::Session;
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// How long the other direction may go on once one has ended (the peer's
/// close on its way).
const GRACE: Duration = Duration::from_secs(5);

/// What a channel carries, which decides how it is relayed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Carries {
    /// A shell or command on a terminal: output masked, a pause releases
    /// a partial line (a prompt).
    Terminal,
    /// A command without a terminal: output masked line by line.
    Command,
    /// Bytes that are not text (sftp, a legacy scp, a forwarded
    /// connection): relayed as they are, counted.
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

/// The recording being made, shared by the two directions.
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

/// Relays until both sides have closed (or one has, and the other did not
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
    let caller_write = &caller_write;
    let target_write = &target_write;
    let state = &state;
    let recording = recording.as_deref();
    let sftp = sftp.as_deref();
    // The gateway's own sftp replies go to the caller between whole packets
    // of the host's, from the direction that writes to the caller.
    let (replies_tx, mut replies_rx) = mpsc::channel::<Vec<u8>>(16);
    let cut = |why: String| {
        let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
        s.cut.get_or_insert(why);
    };
    let upstream = async {
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
            match msg {
                ChannelMsg::Data { data } => {
                    session.counters().read(data.len());
                    state.lock().unwrap_or_else(|p| p.into_inner()).bytes[0] += data.len() as u64;
                    if let Some(r) = recording {
                        if let Err(why) = r.record(|c| c.data(Stdio::Stdin, &data)).await {
                            cut(why);
                            break;
                        }
                    }
                    if let Some(gate) = sftp {
                        match gate.caller_sent(&data).await {
                            Ok((to_target, replies)) => {
                                if !replies.is_empty() && replies_tx.send(replies).await.is_err() {
                                    break;
                                }
                                if !to_target.is_empty()
                                    && target_write.data(&to_target[..]).await.is_err()
                                {
                                    break;
                                }
                            }
                            Err(why) => {
                                cut(why);
                                break;
                            }
                        }
                        continue;
                    }
                    if target_write.data_bytes(data).await.is_err() {
                        break;
                    }
                }
                ChannelMsg::Eof => {
                    let _ = target_write.eof().await;
                }
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
                    let _ = target_write
                        .window_change(col_width, row_height, pix_width, pix_height)
                        .await;
                }
                ChannelMsg::Signal { signal } => {
                    let _ = target_write.signal(signal).await;
                }
                ChannelMsg::Close => break,
                _ => {}
            }
        }
        drop(replies_tx);
        let _ = target_write.close().await;
    };
    let downstream = async {
        let mut masks = [
            OutputMask::new(engine.clone()),
            OutputMask::new(engine.clone()),
        ];
        let quiet = carries.quiet();
        let mut out = Vec::new();
        loop {
            let held = carries != Carries::Bytes && masks.iter().any(|m| m.held() > 0);
            let msg = tokio::select! {
                m = target_read.wait() => m,
                Some(reply) = replies_rx.recv() => {
                    if write_caller(session, caller_write, 0, &reply).await.is_err() {
                        break;
                    }
                    continue;
                }
                () = tokio::time::sleep(quiet), if held => {
                    // Quiet: what was held goes out masked as it stands.
                    for (i, m) in masks.iter_mut().enumerate() {
                        out.clear();
                        m.flush(&mut out);
                        if !out.is_empty() && send(session, caller_write, i, &out, recording, state).await.is_err() {
                            return;
                        }
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
                    flush_all(session, caller_write, &mut masks, recording, state).await;
                    state.lock().unwrap_or_else(|p| p.into_inner()).exit_status = Some(exit_status);
                    let _ = caller_write.exit_status(exit_status).await;
                    continue;
                }
                ChannelMsg::ExitSignal {
                    signal_name,
                    core_dumped,
                    error_message,
                    lang_tag,
                } => {
                    flush_all(session, caller_write, &mut masks, recording, state).await;
                    state.lock().unwrap_or_else(|p| p.into_inner()).exit_signal =
                        Some(format!("{signal_name:?}"));
                    let _ = handle
                        .exit_signal_request(
                            caller_write.id(),
                            signal_name,
                            core_dumped,
                            error_message,
                            lang_tag,
                        )
                        .await;
                    continue;
                }
                ChannelMsg::Failure => {
                    state
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .refused_by_target = true;
                    let note = "gatehouse: the host refused the request\r\n";
                    let _ = caller_write.extended_data(1, note.as_bytes()).await;
                    let _ = caller_write.exit_status(255).await;
                    break;
                }
                ChannelMsg::Eof => {
                    flush_all(session, caller_write, &mut masks, recording, state).await;
                    let _ = caller_write.eof().await;
                    continue;
                }
                ChannelMsg::Close => break,
                _ => continue,
            };
            state.lock().unwrap_or_else(|p| p.into_inner()).bytes[i + 1] += data.len() as u64;
            if let (Some(gate), 0) = (sftp, i) {
                out.clear();
                if let Err(why) = gate.host_sent(&data, &mut out).await {
                    cut(why);
                    break;
                }
                if !out.is_empty() && write_caller(session, caller_write, 0, &out).await.is_err() {
                    break;
                }
                continue;
            }
            if carries == Carries::Bytes {
                if write_caller(session, caller_write, i, &data).await.is_err() {
                    break;
                }
                continue;
            }
            out.clear();
            masks[i].feed(&data, &mut out);
            if !out.is_empty()
                && send(session, caller_write, i, &out, recording, state)
                    .await
                    .is_err()
            {
                break;
            }
        }
        flush_all(session, caller_write, &mut masks, recording, state).await;
        let masked: u64 = masks.iter().map(|m| m.masked).sum();
        state.lock().unwrap_or_else(|p| p.into_inner()).masked = masked;
    };
    let cut_note = || async {
        let why = state.lock().unwrap_or_else(|p| p.into_inner()).cut.clone();
        if let Some(why) = why {
            let note = format!("\r\ngatehouse: the channel was cut: {why}\r\n");
            let _ = caller_write.extended_data(1, note.as_bytes()).await;
            let _ = caller_write.exit_status(255).await;
        }
    };
    {
        let mut upstream = std::pin::pin!(upstream);
        let mut downstream = std::pin::pin!(downstream);
        tokio::select! {
            () = &mut upstream => {
                cut_note().await;
                let _ = tokio::time::timeout(GRACE, &mut downstream).await;
            }
            () = &mut downstream => {
                cut_note().await;
                let _ = caller_write.eof().await;
                let _ = caller_write.close().await;
                let _ = tokio::time::timeout(GRACE, &mut upstream).await;
            }
        }
    }
    let _ = target_write.close().await;
    let _ = caller_write.close().await;
    let relayed = std::mem::take(&mut *state.lock().unwrap_or_else(|p| p.into_inner()));
    relayed
}

/// Sends output to the caller (stdout `0`, stderr `1`) and records it.
async fn send(
    session: &Session,
    caller: &ChannelWriteHalf<russh::server::Msg>,
    i: usize,
    out: &[u8],
    recording: Option<&Recording>,
    state: &Mutex<Relayed>,
) -> Result<(), ()> {
    if let Some(r) = recording {
        let which = if i == 0 { Stdio::Stdout } else { Stdio::Stderr };
        if let Err(why) = r.record(|c| c.data(which, out)).await {
            let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
            s.cut.get_or_insert(why);
            return Err(());
        }
    }
    write_caller(session, caller, i, out).await
}

async fn write_caller(
    session: &Session,
    caller: &ChannelWriteHalf<russh::server::Msg>,
    i: usize,
    out: &[u8],
) -> Result<(), ()> {
    session.counters().written(out.len());
    let sent = if i == 0 {
        caller.data(out).await
    } else {
        caller.extended_data(1, out).await
    };
    sent.map_err(|_| ())
}

/// Sends what the masks hold (the stream ended, or the command exited).
async fn flush_all(
    session: &Session,
    caller: &ChannelWriteHalf<russh::server::Msg>,
    masks: &mut [OutputMask; 2],
    recording: Option<&Recording>,
    state: &Mutex<Relayed>,
) {
    let mut out = Vec::new();
    for (i, m) in masks.iter_mut().enumerate() {
        out.clear();
        m.flush(&mut out);
        if !out.is_empty() {
            let _ = send(session, caller, i, &out, recording, state).await;
        }
    }
}
