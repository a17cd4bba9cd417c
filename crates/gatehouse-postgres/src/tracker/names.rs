//! Statement and portal names, mirrored as the server holds them.
//!
//! A name's record changes only when the server confirmed the change
//! (ParseComplete, BindComplete): a Parse the server refuses (the name is
//! taken) or skips (an earlier error in the batch) leaves the server's older
//! definition in place, and the gateway must keep deciding that one. Until
//! the answer arrives the definition waits in the pending queue, in order
//! with everything else the backend will answer.
//!
//! Where the gateway cannot tell what the server holds, it holds less: the
//! unnamed statement or portal is forgotten when its replacement failed or
//! was skipped (the server may or may not have dropped it), a Close forgets
//! at once, and a name redefined in a batch not yet answered is ambiguous.
//! A name the gateway does not know is refused at Execute, never forwarded.

use super::{Pending, Portal, Tracker};
use crate::gate::Prepared;
use std::collections::HashMap;

/// Longest name the server keeps: it truncates statement and portal names
/// to `NAMEDATALEN - 1` bytes, so longer ones that share a prefix are one.
const MAX_NAME: usize = 63;

/// A name as the server keys it.
pub(super) fn server_name(name: &str) -> &str {
    if name.len() <= MAX_NAME {
        return name;
    }
    let mut end = MAX_NAME;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// A Parse or Bind the backend has not answered yet.
pub(super) struct Definition {
    pub(super) name: String,
    pub(super) what: Defined,
    /// Closed again after it was sent: not kept when confirmed.
    pub(super) closed: bool,
}

// Unboxed like `Pending`: a Box would be one more allocation per Bind on the hot path.
#[allow(clippy::large_enum_variant)]
pub(super) enum Defined {
    Statement(Prepared),
    Portal(Portal),
}

impl Definition {
    /// What `name` (as the server keys it) will hold once confirmed.
    pub(super) fn new(name: &str, what: Defined) -> Self {
        Self {
            name: server_name(name).to_string(),
            what,
            closed: false,
        }
    }

    /// A Describe answered before this definition was confirmed.
    pub(super) fn described(
        &mut self,
        parse_id: u64,
        bind_id: u64,
        cols: &std::sync::Arc<[crate::mask::Column]>,
    ) {
        match &mut self.what {
            Defined::Statement(s) if parse_id != 0 && s.parse_id == parse_id => {
                s.columns = Some(cols.clone());
            }
            Defined::Portal(p) => {
                if bind_id != 0 && p.bind_id == bind_id {
                    p.columns = Some(cols.clone());
                }
                if parse_id != 0 && p.statement.parse_id == parse_id {
                    p.statement.columns = Some(cols.clone());
                }
            }
            Defined::Statement(_) => {}
        }
    }
}

/// What the server will hold under a name when a message sent now reaches it.
pub(super) enum Named<'a, T> {
    Known(&'a T),
    /// The gateway knows of no such name.
    Unknown,
    /// Redefined in an earlier batch not yet answered: the old or the new one.
    Ambiguous,
}

/// What `name` means once the pending queue is answered: the latest
/// definition still on its way (`pick` takes a statement's or a portal's),
/// else what the server confirmed (`committed`).
fn named<'a, T>(
    pending: &'a std::collections::VecDeque<Pending>,
    committed: &'a HashMap<String, T>,
    name: &str,
    pick: fn(&Defined) -> Option<&T>,
) -> Named<'a, T> {
    let name = server_name(name);
    let mut same_batch = true;
    for p in pending.iter().rev() {
        match p {
            Pending::Sync => same_batch = false,
            Pending::Define(d) | Pending::Added(Some(d)) if d.name == name => {
                if let Some(defined) = pick(&d.what) {
                    if d.closed {
                        return Named::Unknown;
                    }
                    // In this batch: if its Parse or Bind fails, what uses it
                    // is skipped too. In an earlier one, unanswered: the server
                    // holds the old definition or the new one.
                    if same_batch || !committed.contains_key(name) {
                        return Named::Known(defined);
                    }
                    return Named::Ambiguous;
                }
            }
            _ => {}
        }
    }
    match committed.get(name) {
        Some(t) => Named::Known(t),
        None => Named::Unknown,
    }
}

impl Tracker {
    /// A statement name as the next Bind or Describe will find it.
    pub(super) fn statement_named(&self, name: &str) -> Named<'_, Prepared> {
        named(&self.pending, &self.prepared, name, |d| match d {
            Defined::Statement(s) => Some(s),
            Defined::Portal(_) => None,
        })
    }

    /// A portal name as the next Execute or Describe will find it.
    pub(super) fn portal_named(&self, name: &str) -> Named<'_, Portal> {
        named(&self.pending, &self.portals, name, |d| match d {
            Defined::Portal(p) => Some(p),
            Defined::Statement(_) => None,
        })
    }

    /// The portal `name` as the next Execute finds it, to change.
    pub(super) fn portal_mut(&mut self, name: &str) -> Option<&mut Portal> {
        let name = server_name(name);
        let pending = self.pending.iter_mut().rev().find_map(|p| match p {
            Pending::Define(d) | Pending::Added(Some(d)) if d.name == name && !d.closed => {
                match &mut d.what {
                    Defined::Portal(p) => Some(p),
                    Defined::Statement(_) => None,
                }
            }
            _ => None,
        });
        match pending {
            Some(p) => Some(p),
            None => self.portals.get_mut(name),
        }
    }

    /// Queues a definition until the server confirms it.
    pub(super) fn define(&mut self, name: &str, what: Defined) {
        self.pending
            .push_back(Pending::Define(Definition::new(name, what)));
    }

    /// A Close: forgotten at once (if the Close is skipped the server keeps
    /// it, and the gateway refusing it is the safe side), and any definition
    /// still on its way is not kept.
    pub(super) fn close(&mut self, name: &str, statement: bool) {
        let name = server_name(name);
        if statement {
            self.prepared.remove(name);
            // SQL PREPARE and Parse share the server's one namespace.
            self.gate.forget_sql_prepared(Some(name));
        } else {
            self.portals.remove(name);
        }
        for p in self.pending.iter_mut() {
            if let Pending::Define(d) | Pending::Added(Some(d)) = p {
                if d.name == name && matches!(d.what, Defined::Statement(_)) == statement {
                    d.closed = true;
                }
            }
        }
    }

    /// DEALLOCATE (`None`: ALL, DISCARD ALL): statement names are forgotten
    /// at once, protocol-level ones too (one namespace on the server).
    pub(super) fn deallocate(&mut self, name: Option<&str>) {
        match name {
            Some(n) => {
                let n = server_name(n);
                self.prepared.remove(n);
                self.gate.forget_sql_prepared(Some(n));
            }
            None => {
                self.prepared.clear();
                self.gate.forget_sql_prepared(None);
            }
        }
    }

    /// Every portal: the transaction that held them ended, or a DECLARE,
    /// CLOSE or DISCARD changed them in ways the gateway does not follow.
    pub(super) fn forget_portals(&mut self) {
        self.portals.clear();
    }

    /// The unnamed statement is replaced whatever its Parse's outcome: a
    /// refused one leaves the gateway knowing none.
    pub(super) fn forget_unnamed_statement(&mut self) {
        self.prepared.remove("");
    }

    /// ParseComplete or BindComplete: the definition at the front holds.
    pub(super) fn confirmed(&mut self) {
        if let Some(Pending::Define(_)) = self.pending.front() {
            if let Some(Pending::Define(d)) = self.pending.pop_front() {
                self.confirm(d);
            }
        }
    }

    /// A definition the server confirmed holds (unless closed since).
    pub(super) fn confirm(&mut self, d: Definition) {
        if d.closed {
            return;
        }
        match d.what {
            Defined::Statement(s) => {
                // The name now means this statement for SQL EXECUTE too.
                self.gate.forget_sql_prepared(Some(&d.name));
                self.prepared.insert(d.name, s);
            }
            Defined::Portal(p) => {
                self.portals.insert(d.name, p);
            }
        }
    }

    /// A definition that failed or was skipped: the server keeps a named
    /// one's older definition; for the unnamed one the gateway cannot tell,
    /// so it knows none.
    pub(super) fn not_defined(&mut self, d: Definition) {
        if !d.name.is_empty() {
            return;
        }
        match d.what {
            Defined::Statement(_) => {
                self.prepared.remove("");
            }
            Defined::Portal(_) => {
                self.portals.remove("");
            }
        }
    }
}
