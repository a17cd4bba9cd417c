//! `KILL [QUERY | CONNECTION] n` and `COM_PROCESS_KILL`: a caller may end
//! only its own queries and sessions, on the same connection, named by the
//! connection id the gateway gave it (what `mysql_thread_id()` and a
//! client's Ctrl-C use) or by the server's (what `CONNECTION_ID()` shows).
//! The gateway sends the server's id on; any other id is refused.

use crate::results::Relay;
use crate::session::{End, MysqlSession};
use crate::{refusals, MysqlError};
use gatehouse_core::{Decided, DecisionRecord};
use gatehouse_session::{Action, Finished};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// What `KILL` ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kill {
    /// The statement running (`KILL QUERY`).
    Query,
    /// The whole session (`KILL [CONNECTION]`, `COM_PROCESS_KILL`).
    Connection,
}

/// A live session as `KILL` may find it.
struct Entry {
    subject: String,
    connection: String,
    backend_id: u32,
}

/// Every live MySQL session of the gateway, by the id callers know it by.
#[derive(Default)]
pub(crate) struct Sessions {
    by_id: Mutex<HashMap<u32, Entry>>,
}

/// A session's place in [`Sessions`], given up when dropped.
pub(crate) struct Registered {
    sessions: Arc<Sessions>,
    id: u32,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.sessions
            .by_id
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.id);
    }
}

impl Sessions {
    /// Whether `id` is a live session's (ids wrap after 2³² connections).
    pub(crate) fn in_use(&self, id: u32) -> bool {
        self.by_id
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&id)
    }
}

impl Sessions {
    /// Registers a session: caller-facing `id`, its identity and
    /// connection, and the server's id for it.
    pub(crate) fn register(
        self: &Arc<Self>,
        id: u32,
        subject: &str,
        connection: &str,
        backend_id: u32,
    ) -> Registered {
        let entry = Entry {
            subject: subject.into(),
            connection: connection.into(),
            backend_id,
        };
        self.by_id
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, entry);
        Registered {
            sessions: self.clone(),
            id,
        }
    }

    /// The server's id of `subject`'s session on `connection` that `id`
    /// names (by the gateway's id or the server's).
    fn find(&self, subject: &str, connection: &str, id: u64) -> Option<u32> {
        let map = self.by_id.lock().unwrap_or_else(|p| p.into_inner());
        let mine = |e: &&Entry| e.subject == subject && e.connection == connection;
        u32::try_from(id).ok().and_then(|id| {
            map.get(&id)
                .filter(mine)
                .or_else(|| map.values().filter(mine).find(|e| e.backend_id == id))
                .map(|e| e.backend_id)
        })
    }
}

/// Reads `KILL [QUERY | CONNECTION] n` from a canonical statement text.
pub(crate) fn parse(canonical: &str) -> Option<(Kill, u64)> {
    let words: Vec<&str> = canonical
        .split(|c: char| c.is_whitespace() || c == ';')
        .filter(|w| !w.is_empty())
        .collect();
    let (kind, id) = match words.as_slice() {
        [k, id] if k.eq_ignore_ascii_case("kill") => (Kill::Connection, id),
        [k, m, id] if k.eq_ignore_ascii_case("kill") && m.eq_ignore_ascii_case("query") => {
            (Kill::Query, id)
        }
        [k, m, id] if k.eq_ignore_ascii_case("kill") && m.eq_ignore_ascii_case("connection") => {
            (Kill::Connection, id)
        }
        _ => return None,
    };
    Some((kind, id.parse().ok()?))
}

impl MysqlSession {
    /// Ends one of the caller's own queries or sessions; anything else is
    /// refused. Recorded as an action either way.
    pub(crate) async fn kill(
        &mut self,
        seq: u8,
        recorded: String,
        what: Option<(Kill, u64)>,
    ) -> Result<Option<End>, MysqlError> {
        let subject = self.session.identity().subject.clone();
        let found = what.and_then(|(kind, id)| {
            self.gw
                .kills
                .find(&subject, self.session.connection(), id)
                .map(|backend| (kind, id, backend))
        });
        let Some((kind, id, backend)) = found else {
            let reason = match what {
                Some((_, id)) => format!(
                    "KILL ends only your own sessions on this connection, and {id} is not one of them"
                ),
                None => "KILL takes one connection id (KILL [QUERY | CONNECTION] n)".into(),
            };
            let err = refusals::denied(&reason);
            return self
                .refuse_unread(seq, recorded, &reason, err, "simple")
                .await;
        };
        let record = DecisionRecord {
            decision: Decided::Allow,
            policies: Vec::new(),
            mode: self.gw.settings.policy.mode().recorded(),
            reason: Some(format!("the caller's own session {id}")),
        };
        let action = Action::begin(&self.session, "simple", recorded, Vec::new());
        if action
            .write_ahead(&self.session, &record, None)
            .await
            .is_err()
        {
            let refusal = gatehouse_session::gate::Refusal::EvidenceUnavailable;
            self.reply(seq, &refusals::refused(&refusal)).await?;
            return Ok(Some(End::EvidenceLogFailed));
        }
        let sql = match kind {
            Kill::Query => format!("KILL QUERY {backend}"),
            Kill::Connection => format!("KILL CONNECTION {backend}"),
        };
        let mut payload = Vec::with_capacity(sql.len() + 1);
        payload.push(0x03);
        payload.extend_from_slice(sql.as_bytes());
        self.forward(&payload).await?;
        let mut relay = Relay::new(
            &mut self.caller.wire,
            &mut self.backend,
            &mut self.out,
            seq,
            None,
        );
        let answered = relay.single().await?;
        self.session.counters().written(relay.sent() as usize);
        let outcome = match answered.error {
            Some((code, message)) => gatehouse_core::ActionOutcome::Error { code, message },
            None => gatehouse_core::ActionOutcome::Ok {
                summary: "KILL".into(),
                count: None,
            },
        };
        action
            .finish(&self.session, outcome, record, Finished::default())
            .await;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_statements_read_with_their_kind_and_id() {
        assert_eq!(parse("KILL 12"), Some((Kill::Connection, 12)));
        assert_eq!(parse("kill query 7;"), Some((Kill::Query, 7)));
        assert_eq!(parse("KILL CONNECTION 3"), Some((Kill::Connection, 3)));
        assert_eq!(parse("KILL QUERY ID 3"), None);
        assert_eq!(parse("KILL USER bob"), None);
    }

    #[test]
    fn only_the_callers_own_sessions_on_the_same_connection_are_found() {
        let s = Arc::new(Sessions::default());
        let _a = s.register(5, "ci", "shop-db", 105);
        let _b = s.register(6, "other", "shop-db", 106);
        assert_eq!(s.find("ci", "shop-db", 5), Some(105));
        assert_eq!(s.find("ci", "shop-db", 105), Some(105));
        assert_eq!(s.find("ci", "shop-db", 6), None);
        assert_eq!(s.find("ci", "shop-db", 106), None);
        assert_eq!(s.find("ci", "other-db", 5), None);
        drop(_a);
        assert_eq!(s.find("ci", "shop-db", 5), None);
    }
}
