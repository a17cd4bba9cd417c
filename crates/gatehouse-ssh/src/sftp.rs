//! The sftp subsystem read as it is relayed (so `sftp` and `scp` are
//! decided file by file): each operation on paths (an open for reading or
//! writing, a listing, a removal, a rename…) is decided as `ssh:sftp` with
//! its operation and paths before it reaches the host, and recorded as an
//! action; an open file's action ends at its close, with the bytes read or
//! written. A refused operation is answered by the gateway with a
//! permission-denied status naming why, and the client goes on. Reads and
//! writes ride on a handle the gateway saw opened; any other handle is
//! refused.

mod packet;

use crate::caller::Login;
use gatehouse_core::{statement_fingerprint, ActionOutcome, DecisionRecord};
use gatehouse_policy::{Decision, SshRequestFacts};
use gatehouse_session::gate::{self, ApprovalAsk, Verdict};
use gatehouse_session::recording::mask_for_record;
use gatehouse_session::{Action, Finished};
use packet::{Frames, OnHandle, Reply, Request};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One decided operation, until its reply (or, for an open, its close).
struct Op {
    /// The paths it was decided on.
    paths: Vec<String>,
    action: Action,
    record: DecisionRecord,
    operation: &'static str,
    bytes: u64,
}

/// A finished operation, to record.
struct Done {
    op: Op,
    outcome: ActionOutcome,
}

#[derive(Default)]
struct State {
    /// Request ids forwarded and not answered yet: one in use again would
    /// mix up two requests' replies.
    in_flight: std::collections::HashSet<u32>,
    /// Decided operations waiting for the host's reply, by request id.
    pending: HashMap<u32, Op>,
    /// Open files and folders, by handle.
    handles: HashMap<Vec<u8>, Op>,
    /// Reads and closes waiting for their reply: the handle they are on.
    on_handle: HashMap<u32, (Vec<u8>, OnHandle)>,
}

/// The sftp subsystem of one channel, read in both directions.
pub(crate) struct SftpGate {
    login: Arc<Login>,
    from_caller: Mutex<Frames>,
    from_target: Mutex<Frames>,
    state: Mutex<State>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl SftpGate {
    pub(crate) fn new(login: Arc<Login>) -> Self {
        Self {
            login,
            from_caller: Mutex::default(),
            from_target: Mutex::default(),
            state: Mutex::default(),
        }
    }

    /// The caller's bytes: what goes on to the host, and the gateway's own
    /// replies to operations it refused. `Err` cuts the channel.
    pub(crate) async fn caller_sent(&self, data: &[u8]) -> Result<(Vec<u8>, Vec<u8>), String> {
        let mut packets = Vec::new();
        lock(&self.from_caller).push(data, &mut packets)?;
        let mut to_target = Vec::new();
        let mut replies = Vec::new();
        for p in packets {
            let request =
                packet::request(&p).map_err(|e| format!("a malformed sftp request: {e}"))?;
            let id = request.id();
            if let Some(id) = id {
                if !lock(&self.state).in_flight.insert(id) {
                    // A request id still waiting for its host's reply would
                    // mix up two requests' replies.
                    self.refuse_unread(id, "a request id already in use", &mut replies)
                        .await;
                    continue;
                }
            }
            let forwarded_before = to_target.len();
            match request {
                Request::Init | Request::Harmless { .. } => to_target.extend_from_slice(&p),
                Request::Handle {
                    id,
                    handle,
                    what: OnHandle::SetStat,
                } => {
                    let paths = lock(&self.state)
                        .handles
                        .get(&handle)
                        .map(|o| o.paths.clone());
                    let Some(paths) = paths else {
                        self.refuse_unread(
                            id,
                            "a handle the gateway did not see opened",
                            &mut replies,
                        )
                        .await;
                        continue;
                    };
                    if let Some(op) = self.decide(id, "setstat", &paths, &mut replies).await {
                        lock(&self.state).pending.insert(id, op);
                        to_target.extend_from_slice(&p);
                    }
                }
                Request::Handle { id, handle, what } => {
                    let known = {
                        let mut state = lock(&self.state);
                        match state.handles.get_mut(&handle) {
                            None => false,
                            Some(open) => {
                                match what {
                                    OnHandle::Write(n) => open.bytes += n,
                                    OnHandle::Read | OnHandle::Close => {
                                        state.on_handle.insert(id, (handle, what));
                                    }
                                    OnHandle::Other | OnHandle::SetStat => {}
                                }
                                true
                            }
                        }
                    };
                    if !known {
                        self.refuse_unread(
                            id,
                            "a handle the gateway did not see opened",
                            &mut replies,
                        )
                        .await;
                        continue;
                    }
                    to_target.extend_from_slice(&p);
                }
                Request::Refused { id, why } => {
                    self.refuse_unread(id, &why, &mut replies).await;
                }
                Request::Paths {
                    id,
                    operation,
                    paths,
                } => {
                    if let Some(op) = self.decide(id, operation, &paths, &mut replies).await {
                        lock(&self.state).pending.insert(id, op);
                        to_target.extend_from_slice(&p);
                    }
                }
            }
            // Answered by the gateway, not forwarded: its id is free again.
            if let (Some(id), true) = (id, to_target.len() == forwarded_before) {
                lock(&self.state).in_flight.remove(&id);
            }
        }
        Ok((to_target, replies))
    }

    /// The host's bytes, passed on whole; the replies of decided operations
    /// end their actions.
    pub(crate) async fn host_sent(&self, data: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        let mut packets = Vec::new();
        lock(&self.from_target).push(data, &mut packets)?;
        let mut done = Vec::new();
        {
            let mut state = lock(&self.state);
            for p in packets {
                let reply =
                    packet::reply(&p).map_err(|e| format!("a malformed sftp reply: {e}"))?;
                note_reply(&mut state, reply, &mut done);
                out.extend_from_slice(&p);
            }
        }
        for d in done {
            self.record(d).await;
        }
        Ok(())
    }

    /// The channel ended: what is still open or unanswered is recorded.
    pub(crate) async fn end(&self) {
        let left: Vec<Op> = {
            let mut state = lock(&self.state);
            let mut left: Vec<Op> = state.pending.drain().map(|(_, op)| op).collect();
            left.extend(state.handles.drain().map(|(_, op)| op));
            left
        };
        for op in left {
            let outcome = match op.operation {
                "open-read" | "open-write" | "list" => transferred(&op),
                _ => ActionOutcome::Incomplete,
            };
            self.record(Done { op, outcome }).await;
        }
    }

    async fn record(&self, d: Done) {
        let Done { op, outcome } = d;
        op.action
            .finish(&self.login.session, outcome, op.record, Finished::default())
            .await;
    }

    /// A request the gateway cannot read for a decision: refused, and
    /// recorded as refused.
    async fn refuse_unread(&self, id: u32, why: &str, replies: &mut Vec<u8>) {
        crate::channel::refuse_unread(&self.login, &format!("sftp ({why})"), why).await;
        replies.extend(packet::status(
            id,
            packet::FX_OP_UNSUPPORTED,
            &format!("gatehouse: {why}"),
        ));
    }

    /// Decides one operation; `None` when it is refused (the caller's reply
    /// is in `replies`, the refusal recorded).
    async fn decide(
        &self,
        id: u32,
        operation: &'static str,
        paths: &[String],
        replies: &mut Vec<u8>,
    ) -> Option<Op> {
        let login = &self.login;
        let session = &login.session;
        let engine = login.target.masking.clone();
        let mask = move |t: &str| mask_for_record(&engine, t);
        let policy = login.gw.settings.policy.clone();
        let decide_as = |approved: bool| -> Decision {
            let (engine, _) = policy.current();
            engine.decide_ssh(&SshRequestFacts {
                subsystem: "sftp",
                operation,
                paths,
                ..login.facts("ssh:sftp", approved)
            })
        };
        let fingerprint = statement_fingerprint(
            &session.identity().subject,
            &login.target.name,
            "ssh",
            &format!("ssh:sftp {operation}\n{}", paths.join("\n")),
            &[Some(login.user.as_bytes())],
        );
        let action = Action::begin(
            session,
            "ssh",
            mask(&format!("sftp {operation} {}", paths.join(" "))),
            vec![Some(format!("account={}", login.user))],
        );
        let ask = ApprovalAsk {
            seq: action.seq(),
            text: action.text(),
            params: action.params(),
            fingerprint: &fingerprint,
            mask: &mask,
        };
        // A file operation cannot wait: one that needs approval is refused
        // naming its request, and goes through once approved.
        let verdict = match gate::decide(session, policy.mode(), &decide_as, &ask).await {
            Verdict::Held(held) => held.refuse(),
            v => v,
        };
        match verdict {
            Verdict::Forward {
                mut record,
                approval,
            } => {
                record.reason = record.reason.map(|r| mask(&r));
                if action
                    .write_ahead(session, &record, approval)
                    .await
                    .is_err()
                {
                    let why =
                        "gatehouse could not write its evidence log, so the operation was not run";
                    replies.extend(packet::status(id, packet::FX_FAILURE, why));
                    return None;
                }
                Some(Op {
                    paths: paths.to_vec(),
                    action,
                    record,
                    operation,
                    bytes: 0,
                })
            }
            Verdict::Refuse {
                mut record,
                refusal,
            } => {
                record.reason = record.reason.map(|r| mask(&r));
                let message = mask(&refusal.message());
                let logged = action.write_ahead(session, &record, None).await;
                replies.extend(packet::status(
                    id,
                    packet::FX_PERMISSION_DENIED,
                    &format!("gatehouse: {message}"),
                ));
                if logged.is_ok() {
                    action.failed(session, "refused", message, record).await;
                }
                None
            }
            Verdict::Held(_) => unreachable!("a held operation was turned into a refusal above"),
        }
    }
}

/// What an open file's action says at its close.
fn transferred(op: &Op) -> ActionOutcome {
    ActionOutcome::Ok {
        summary: match op.operation {
            "open-write" => format!("wrote {} bytes", op.bytes),
            "open-read" => format!("read {} bytes", op.bytes),
            _ => "listed".into(),
        },
        count: Some(op.bytes),
    }
}

/// The SFTP status code's name.
fn status_name(code: u32) -> &'static str {
    match code {
        1 => "eof",
        2 => "no_such_file",
        3 => "permission_denied",
        4 => "failure",
        5 => "bad_message",
        6 => "no_connection",
        7 => "connection_lost",
        8 => "op_unsupported",
        _ => "status",
    }
}

/// Applies one of the host's replies to what waits for it.
fn note_reply(state: &mut State, reply: Reply, done: &mut Vec<Done>) {
    match &reply {
        Reply::Version => {}
        Reply::Status { id, .. }
        | Reply::Handle { id, .. }
        | Reply::Data { id, .. }
        | Reply::Other { id } => {
            state.in_flight.remove(id);
        }
    }
    match reply {
        Reply::Version => {}
        Reply::Handle { id, handle } => {
            if let Some(op) = state.pending.remove(&id) {
                // A handle the host gives again ends the file it named.
                if let Some(old) = state.handles.insert(handle, op) {
                    let outcome = transferred(&old);
                    done.push(Done { op: old, outcome });
                }
            }
        }
        Reply::Data { id, bytes } => {
            if let Some((handle, _)) = state.on_handle.remove(&id) {
                if let Some(open) = state.handles.get_mut(&handle) {
                    open.bytes += bytes;
                }
            }
        }
        Reply::Status { id, code, message } => {
            if let Some(op) = state.pending.remove(&id) {
                let outcome = if code == 0 {
                    ActionOutcome::Ok {
                        summary: "ok".into(),
                        count: None,
                    }
                } else {
                    ActionOutcome::Error {
                        code: status_name(code).into(),
                        message,
                    }
                };
                done.push(Done { op, outcome });
            } else if let Some((handle, what)) = state.on_handle.remove(&id) {
                if what == OnHandle::Close {
                    if let Some(op) = state.handles.remove(&handle) {
                        let outcome = transferred(&op);
                        done.push(Done { op, outcome });
                    }
                }
            }
        }
        Reply::Other { id } => {
            if let Some(op) = state.pending.remove(&id) {
                let outcome = ActionOutcome::Ok {
                    summary: "ok".into(),
                    count: None,
                };
                done.push(Done { op, outcome });
            }
            state.on_handle.remove(&id);
        }
    }
}
