//! One client's session: opened on the core's session object once the
//! handshake established it, greeted, relayed, and closed with every
//! statement recorded.

use crate::codec::backend::{auth_ok, backend_key_data};
use crate::ending::Ending;
use crate::gate::{self, Gate};
use crate::handshake::Established;
use crate::mask::SessionMasking;
use crate::refusals;
use crate::relay::{self, Legs, Signals};
use crate::tracker::Tracker;
use crate::Inner;
use bytes::{BufMut, BytesMut};
use gatehouse_core::SessionEndReason;
use std::net::SocketAddr;
use std::sync::Mutex;
use tokio::sync::watch;

/// Runs an established session to its end.
pub(crate) async fn run(
    inner: &Inner,
    e: Established,
    peer: SocketAddr,
    shutdown: watch::Receiver<bool>,
) {
    let Established {
        mut client,
        client_leftover,
        admitted,
        details,
        target,
        backend,
        function_names,
    } = e;
    let session = match admitted.open(details).await {
        Ok(s) => s,
        Err(err) => {
            tracing::error!(error = %err, "could not record session start; refusing the session");
            refusals::send(&mut client, &refusals::session_unrecorded(&err)).await;
            return;
        }
    };
    // The backend took the pinned settings, or the session cannot be read as it reads it.
    let broken = gate::settings::PINNED.iter().find_map(|(name, _)| {
        let value = greeting_param(&backend.greeting, name).unwrap_or_default();
        gate::settings::reported_break(name, &value)
    });
    if let Some(reason) = broken {
        refusals::send(&mut client, &refusals::settings_not_pinned(&reason)).await;
        session
            .close(SessionEndReason::PinnedSettingChanged, Some(reason))
            .await;
        return;
    }

    let cancel_key = inner
        .cancels
        .register(&target.host, target.port, backend.key);
    let mut out = BytesMut::with_capacity(backend.greeting.len() + 64);
    auth_ok(&mut out);
    out.put_slice(&backend.greeting);
    backend_key_data(&mut out, cancel_key.pid, cancel_key.secret);
    // ReadyForQuery, idle.
    out.put_slice(&[b'Z', 0, 0, 0, 5, b'I']);

    let settings = &inner.settings;
    let identity = session.identity().clone();
    let mut gate = Gate::new(
        settings.gate.clone(),
        identity.clone(),
        target.name.clone(),
        peer.ip(),
    );
    gate.set_search_path(backend.search_path, &target.user);
    gate.set_function_names(function_names);
    gate.set_session(session.clone());
    let mut masking = SessionMasking::new(
        settings.masking.get(&target.name).cloned(),
        settings.record_masking.clone(),
        &identity.groups,
    );
    masking.found_for(&identity, session.id());
    gate.set_column_guard(masking.column_guard());
    let tracker = Mutex::new(Tracker::new(session.id(), gate, masking));
    let ending = if let Err(err) = crate::io::send(&mut client, &out).await {
        Ending::new(
            SessionEndReason::ClientDisconnected,
            format!("client: {err}"),
        )
    } else {
        let legs = Legs {
            client,
            client_leftover,
            backend: backend.stream,
            backend_leftover: backend.leftover,
        };
        let signals = Signals {
            shutdown,
            cancelled: cancel_key.cancelled(),
        };
        relay::relay(legs, &tracker, &session, &settings.limits, signals).await
    };
    drop(cancel_key);

    let leftovers = relay::lock(&tracker).drain_incomplete();
    for r in leftovers {
        let _ = session.finished(r).await;
    }
    session.close(ending.reason, ending.detail).await;
}

/// A parameter's value from raw ParameterStatus messages.
fn greeting_param(greeting: &[u8], name: &str) -> Option<String> {
    let mut rest = greeting;
    while rest.len() >= 5 {
        let ty = rest[0];
        let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        let total = 1 + len;
        if len < 4 || rest.len() < total {
            return None;
        }
        if ty == b'S' {
            let mut c = crate::codec::Cursor::new(&rest[5..total]);
            if let (Ok(k), Ok(v)) = (c.cstr("name"), c.cstr("value")) {
                if k == name {
                    return Some(v.to_string());
                }
            }
        }
        rest = &rest[total..];
    }
    None
}
