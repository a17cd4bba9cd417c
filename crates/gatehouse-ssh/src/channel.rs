//! One session channel: its terminal and environment noted, then its one
//! action (a shell, a command, the sftp subsystem) decided by the policy,
//! held for approval or refused (the caller told on stderr, with an exit
//! status), and only then opened on the target and relayed.

use crate::caller::Login;
use crate::relay::{self, CallerSide, Carries, Recording, TargetSide};
use gatehouse_core::{statement_fingerprint, ActionOutcome, DecisionRecord, StreamRecord};
use gatehouse_policy::{Decision, SshRequestFacts};
use gatehouse_session::gate::{self, ApprovalAsk, Refusal, Verdict};
use gatehouse_session::recording::{mask_for_record, Cast, Header, RecordingFile};
use gatehouse_session::{Action, Finished};
use russh::{Channel, ChannelMsg, Pty};
use std::sync::{Arc, Mutex};

/// Exit status of an action the gateway refused (it did not run).
const REFUSED: u32 = 126;
/// Exit status when the gateway or the target failed.
const FAILED: u32 = 255;
/// Environment variables one channel may ask for.
const MAX_ENV: usize = 64;
/// Input kept while an action is held for approval.
const EARLY_LIMIT: usize = 1 << 20;

/// The terminal a channel asked for.
#[derive(Clone, Debug)]
pub(crate) struct Terminal {
    term: String,
    cols: u32,
    rows: u32,
    pix: (u32, u32),
    modes: Vec<(Pty, u32)>,
}

/// What a session channel was opened for.
#[derive(Debug)]
enum Start {
    Shell,
    Exec(String),
    Subsystem(String),
}

impl Start {
    fn action(&self) -> &'static str {
        match self {
            Self::Shell => "ssh:shell",
            Self::Exec(_) => "ssh:exec",
            Self::Subsystem(_) => "ssh:sftp",
        }
    }

    /// The action as records show it.
    fn text(&self) -> String {
        match self {
            Self::Shell => "(shell)".into(),
            Self::Exec(c) => c.clone(),
            Self::Subsystem(s) => format!("(subsystem {s})"),
        }
    }
}

/// The caller's side of a channel before it is relayed.
struct Caller {
    chan: Channel<russh::server::Msg>,
    handle: russh::server::Handle,
}

impl Caller {
    /// Tells the caller why on stderr, ends the channel with `status`.
    async fn end(&self, message: &str, status: u32) {
        let text = format!("gatehouse: {message}\r\n");
        let _ = self.chan.extended_data(1, text.as_bytes()).await;
        let _ = self.chan.exit_status(status).await;
        let _ = self.chan.eof().await;
        let _ = self.chan.close().await;
    }
}

/// Runs one session channel to its end.
pub(crate) async fn run(
    login: Arc<Login>,
    chan: Channel<russh::server::Msg>,
    handle: russh::server::Handle,
) {
    let mut caller = Caller { chan, handle };
    let mut terminal: Option<Terminal> = None;
    let mut env: Vec<(String, String)> = Vec::new();
    let start = loop {
        match caller.chan.wait().await {
            None | Some(ChannelMsg::Close) => return,
            Some(ChannelMsg::RequestPty {
                term,
                col_width,
                row_height,
                pix_width,
                pix_height,
                terminal_modes,
                ..
            }) => {
                terminal = Some(Terminal {
                    term,
                    cols: col_width,
                    rows: row_height,
                    pix: (pix_width, pix_height),
                    modes: terminal_modes,
                })
            }
            Some(ChannelMsg::WindowChange {
                col_width,
                row_height,
                ..
            }) => {
                if let Some(t) = terminal.as_mut() {
                    t.cols = col_width;
                    t.rows = row_height;
                }
            }
            Some(ChannelMsg::SetEnv {
                variable_name,
                variable_value,
                ..
            }) => {
                if env.len() < MAX_ENV {
                    env.push((variable_name, variable_value));
                }
            }
            Some(ChannelMsg::RequestShell { .. }) => break Start::Shell,
            Some(ChannelMsg::Exec { command, .. }) => match String::from_utf8(command) {
                Ok(c) => break Start::Exec(c),
                Err(e) => {
                    let shown = String::from_utf8_lossy(e.as_bytes()).into_owned();
                    let why =
                        "the command is not UTF-8 text, so it cannot be decided; nothing was run";
                    refuse_unread(&login, &shown, why).await;
                    caller.end(why, REFUSED).await;
                    return;
                }
            },
            Some(ChannelMsg::RequestSubsystem { name, .. }) => {
                if name == "sftp" {
                    break Start::Subsystem(name);
                }
                let why = format!("the subsystem {name:?} is not relayed (only sftp is)");
                refuse_unread(&login, &format!("(subsystem {name})"), &why).await;
                caller.end(&why, REFUSED).await;
                return;
            }
            Some(_) => {}
        }
    };
    act(login, caller, terminal, env, start).await;
}

async fn act(
    login: Arc<Login>,
    mut caller: Caller,
    terminal: Option<Terminal>,
    env: Vec<(String, String)>,
    start: Start,
) {
    let session = &login.session;
    let engine = login.target.masking.clone();
    let mask = {
        let engine = engine.clone();
        move |t: &str| mask_for_record(&engine, t)
    };
    let env_pairs: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let command = match &start {
        Start::Exec(c) => c.as_str(),
        _ => "",
    };
    let subsystem = match &start {
        Start::Subsystem(s) => s.as_str(),
        _ => "",
    };
    let policy = login.gw.settings.policy.clone();
    let decide_as = |approved: bool| -> Decision {
        let (engine, _) = policy.current();
        engine.decide_ssh(&SshRequestFacts {
            command,
            pty: terminal.as_ref().map(|t| t.term.as_str()),
            env: &env_pairs,
            subsystem,
            ..login.facts(start.action(), approved)
        })
    };
    let mut params: Vec<Option<String>> = vec![Some(format!("account={}", login.user))];
    if let Some(t) = &terminal {
        params.push(Some(format!("pty={}", t.term)));
    }
    params.extend(env_pairs.iter().map(|p| Some(mask(p))));
    let bound = params
        .iter()
        .flatten()
        .map(|p| format!("{p}\n"))
        .collect::<String>();
    let fingerprint = statement_fingerprint(
        &session.identity().subject,
        &login.target.name,
        "ssh",
        &format!("{} {}", start.action(), start.text()),
        &[Some(bound.as_bytes())],
    );
    let action = Action::begin(session, "ssh", mask(&start.text()), params);
    let ask = ApprovalAsk {
        seq: action.seq(),
        text: action.text(),
        params: action.params(),
        fingerprint: &fingerprint,
        mask: &mask,
    };
    let mut verdict = gate::decide(session, policy.mode(), &decide_as, &ask).await;
    let mut early = Vec::new();
    if let Verdict::Held(held) = verdict {
        let note = format!(
            "gatehouse: held for approval: request {id}; an approver runs `gatehouse approvals approve {id}`. Waiting up to {}…\r\n",
            humantime_secs(held.timeout()),
            id = held.id()
        );
        let _ = caller.chan.extended_data(1, note.as_bytes()).await;
        // The caller may give up while it waits: its channel closing ends
        // the wait. What it sends meanwhile (input, its end, its terminal's
        // size, signals) is kept for the target, up to a bound; past it the
        // command is refused.
        let mut chan = caller.chan;
        let gave_up = async {
            let mut kept = 0usize;
            loop {
                let m = match chan.wait().await {
                    None | Some(ChannelMsg::Close) => return "the caller closed the channel",
                    Some(m) => m,
                };
                kept += match &m {
                    ChannelMsg::Data { data } => data.len(),
                    ChannelMsg::Eof
                    | ChannelMsg::WindowChange { .. }
                    | ChannelMsg::Signal { .. } => 64,
                    _ => continue,
                };
                if kept > EARLY_LIMIT {
                    return "more than 1 MiB of input arrived";
                }
                early.push(m);
            }
        };
        verdict = tokio::select! {
            v = held.wait(session, &decide_as) => v,
            why = gave_up => {
                let why = format!("held for approval; {why} while it waited, so it was not run");
                let record = DecisionRecord {
                    decision: gatehouse_core::Decided::Deny,
                    policies: Vec::new(),
                    mode: policy.mode().recorded(),
                    reason: Some(why.clone()),
                };
                let caller = Caller { chan, handle: caller.handle };
                caller.end(&why, REFUSED).await;
                if action.write_ahead(session, &record, None).await.is_ok() {
                    action.failed(session, "left", why, record).await;
                }
                return;
            }
        };
        caller = Caller {
            chan,
            handle: caller.handle,
        };
    }
    proceed(login, caller, terminal, env, start, action, verdict, early).await
}

fn humantime_secs(d: std::time::Duration) -> String {
    format!("{}s", d.as_secs())
}

#[allow(clippy::too_many_arguments)]
async fn proceed(
    login: Arc<Login>,
    caller: Caller,
    terminal: Option<Terminal>,
    env: Vec<(String, String)>,
    start: Start,
    action: Action,
    verdict: Verdict,
    early: Vec<ChannelMsg>,
) {
    let session = &login.session;
    let engine = login.target.masking.clone();
    let (record, approval) = match verdict {
        Verdict::Forward { record, approval } => (record, approval),
        Verdict::Refuse {
            mut record,
            refusal,
        } => {
            record.reason = record.reason.map(|r| mask_for_record(&engine, &r));
            let message = mask_for_record(&engine, &refusal.message());
            if action.write_ahead(session, &record, None).await.is_err() {
                caller
                    .end(&Refusal::EvidenceUnavailable.message(), FAILED)
                    .await;
                return;
            }
            let code = match refusal {
                Refusal::ApprovalRequired { .. } => "approval",
                Refusal::EvidenceUnavailable => "evidence",
                _ => "refused",
            };
            caller.end(&message, REFUSED).await;
            action.failed(session, code, message, record).await;
            return;
        }
        Verdict::Held(_) => unreachable!("a held action is waited for before it proceeds"),
    };
    let mut record = record;
    record.reason = record.reason.map(|r| mask_for_record(&engine, &r));
    if action
        .write_ahead(session, &record, approval)
        .await
        .is_err()
    {
        caller
            .end(&Refusal::EvidenceUnavailable.message(), FAILED)
            .await;
        return;
    }
    let upstream = match login.upstream().await {
        Ok(u) => u,
        Err(why) => {
            return failed(&caller, session, action, record, why).await;
        }
    };
    let up = match upstream.channel_open_session().await {
        Ok(c) => c,
        Err(e) => {
            let why = format!("the host did not open a channel: {e}");
            return failed(&caller, session, action, record, why).await;
        }
    };
    let carries = match (&start, &terminal) {
        (Start::Subsystem(_), _) => Carries::Bytes,
        (Start::Exec(c), None) if legacy_scp(c) => Carries::Bytes,
        (_, Some(_)) => Carries::Terminal,
        (_, None) => Carries::Command,
    };
    // Shells and commands are recorded from their first byte: the file is
    // made before anything goes to the target.
    let name = format!("{}-{}.cast", session.id(), action.seq());
    let file = if carries == Carries::Bytes {
        None
    } else {
        match RecordingFile::create(&login.gw.settings.recordings, &name).await {
            Ok(f) => Some(f),
            Err(e) => {
                tracing::error!(error = %e, "could not start an ssh recording; refusing the channel");
                let why = "gatehouse could not start the channel's recording, so it was not opened"
                    .to_string();
                caller.end(&why, FAILED).await;
                action.failed(session, "recording", why, record).await;
                return;
            }
        }
    };
    let agent = login.agent_allowed(caller.chan.id());
    let mut agent_channel = None;
    let sent = async {
        if agent {
            up.agent_forward(false).await?;
            // Agent connections from the host are bridged while this runs.
            agent_channel = Some(crate::agent::AgentChannel::open(&login.agent));
        }
        if let Some(t) = &terminal {
            up.request_pty(false, &t.term, t.cols, t.rows, t.pix.0, t.pix.1, &t.modes)
                .await?;
        }
        for (k, v) in &env {
            up.set_env(false, k.as_str(), v.as_str()).await?;
        }
        match &start {
            Start::Shell => up.request_shell(true).await,
            Start::Exec(c) => up.exec(true, c.as_bytes()).await,
            Start::Subsystem(s) => up.request_subsystem(true, s.as_str()).await,
        }
    }
    .await;
    if let Err(e) = sent {
        let why = format!("the host's channel failed: {e}");
        return failed(&caller, session, action, record, why).await;
    }
    let recording = file.as_ref().map(|f| {
        let header = Header {
            title: format!(
                "{} on {} as {}",
                action.text(),
                login.target.name,
                login.user
            ),
            command: match &start {
                Start::Exec(_) => action.text().to_string(),
                _ => String::new(),
            },
            started_unix: action.started().unix_millis() / 1000,
        };
        let mut cast = Cast::new(engine.clone(), login.target.recording_limit, header);
        if let Some(t) = &terminal {
            cast.resize(t.cols, t.rows);
        }
        Arc::new(Recording {
            cast: Mutex::new(cast),
            sink: f.sink.clone(),
        })
    });
    let sftp = matches!(start, Start::Subsystem(_))
        .then(|| Arc::new(crate::sftp::SftpGate::new(login.clone())));
    let (read, write) = caller.chan.split();
    let (up_read, up_write) = up.split();
    let relayed = relay::relay(
        session,
        CallerSide {
            read,
            write,
            handle: caller.handle,
        },
        TargetSide {
            read: up_read,
            write: up_write,
        },
        relay::Plan {
            carries,
            engine,
            recording: recording.clone(),
            early,
            sftp: sftp.clone(),
        },
    )
    .await;
    if let Some(gate) = sftp {
        gate.end().await;
    }
    let mut stream = StreamRecord {
        protocol: "ssh".into(),
        stdin_bytes: relayed.bytes[0],
        stdout_bytes: relayed.bytes[1],
        stderr_bytes: relayed.bytes[2],
        exit_code: relayed.exit_status.map(i64::from),
        ..StreamRecord::default()
    };
    let mut outcome = match (&relayed.cut, relayed.exit_status, &relayed.exit_signal) {
        (Some(why), _, _) => ActionOutcome::Error {
            code: "cut".into(),
            message: why.clone(),
        },
        _ if relayed.refused_by_target => ActionOutcome::Error {
            code: "target".into(),
            message: "the host refused the request".into(),
        },
        (None, Some(0), _) | (None, None, None) => ActionOutcome::Ok {
            summary: match relayed.exit_status {
                Some(c) => format!("exit {c}"),
                None => "ended".into(),
            },
            count: None,
        },
        (None, Some(code), _) => ActionOutcome::Error {
            code: "exit".into(),
            message: format!("the command exited with {code}"),
        },
        (None, None, Some(sig)) => ActionOutcome::Error {
            code: "signal".into(),
            message: format!("the command was ended by signal {sig}"),
        },
    };
    if let (Some(r), Some(file)) = (recording, file) {
        // The relay is over: this is the recording's last holder.
        let cast = match Arc::into_inner(r) {
            Some(r) => r.cast.into_inner().unwrap_or_else(|p| p.into_inner()),
            None => unreachable!("the relay hands its recording back when it ends"),
        };
        let exit = relayed.exit_status.map(i64::from);
        match file.keep(cast, exit).await {
            Ok(w) => stream.kept(name, w.sha256, w.bytes),
            Err(e) => {
                tracing::error!(error = %e, "could not keep an ssh recording");
                outcome = ActionOutcome::Error {
                    code: "recording".into(),
                    message: format!("gatehouse could not keep the recording: {e}"),
                };
            }
        }
    }
    action
        .finish(session, outcome, record, Finished::stream(stream))
        .await;
}

/// A legacy scp (`scp -O`, or an old client): exactly `scp [-v] [-r] [-p]
/// [-d] -t|-f [--] PATH`, as OpenSSH's scp runs it on the far side. Its
/// stdout carries file bytes, not text, so it is relayed unmasked (stderr
/// stays text).
fn legacy_scp(command: &str) -> bool {
    let Some((words, false)) = gatehouse_policy::shell_words(command) else {
        return false;
    };
    let Some((first, rest)) = words.split_first() else {
        return false;
    };
    let flags: Vec<&String> = rest.iter().filter(|w| w.starts_with('-')).collect();
    let modes = flags
        .iter()
        .filter(|w| ["-t", "-f"].contains(&w.as_str()))
        .count();
    first == "scp"
        && modes == 1
        && flags
            .iter()
            .all(|w| ["-t", "-f", "-v", "-r", "-p", "-d", "--"].contains(&w.as_str()))
        && rest.len() - flags.len() <= 1
}

/// A decided action that could not be run (the host unreachable, its
/// channel refused): the caller is told, the result recorded.
async fn failed(
    caller: &Caller,
    session: &gatehouse_session::Session,
    action: Action,
    record: DecisionRecord,
    why: String,
) {
    caller.end(&why, FAILED).await;
    action.failed(session, "unreachable", why, record).await;
}

/// Records an action refused before it could be decided (what it asks for
/// cannot be read): its refusal is in the evidence log like any other.
pub(crate) async fn refuse_unread(login: &Login, what: &str, why: &str) {
    let session = &login.session;
    let action = Action::begin(
        session,
        "ssh",
        mask_for_record(&login.target.masking, what),
        Vec::new(),
    );
    // The reason quotes what the caller sent: masked like the text.
    let why = mask_for_record(&login.target.masking, why);
    let record = DecisionRecord {
        decision: gatehouse_core::Decided::Deny,
        policies: Vec::new(),
        mode: login.gw.settings.policy.mode().recorded(),
        reason: Some(why.clone()),
    };
    if action.write_ahead(session, &record, None).await.is_ok() {
        action.failed(session, "refused", why, record).await;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_the_far_side_of_scp_is_a_legacy_scp() {
        assert!(super::legacy_scp("scp -t -- /srv/x"));
        assert!(super::legacy_scp("scp -v -r -p -f /srv"));
        assert!(!super::legacy_scp("scp -f -o ProxyCommand=x a:b c"));
        assert!(!super::legacy_scp("scp -t -f /x"));
        assert!(!super::legacy_scp("scp -t /x; cat /etc/shadow"));
        assert!(!super::legacy_scp("scp -tf /x"));
        assert!(!super::legacy_scp("cat -t /x"));
    }
}
