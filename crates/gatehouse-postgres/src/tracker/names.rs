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

/// A Parse or Bind the backend has not answered yet.
pub(super) struct Definition {
    pub(super) name: String,
    pub(super) what: Defined,
    /// Closed again after it was sent: not kept when confirmed.
    pub(super) closed: bool,
}

pub(super) enum Defined {
    Statement(Prepared),
    Portal(Box<Portal>),
}

/// What the server will hold under a name when a message sent now reaches it.
pub(super) enum Named<'a, T> {
    Known(&'a T),
    /// The gateway knows of no such name.
    Unknown,
    /// Redefined in an earlier batch not yet answered: the old or the new one.
    Ambiguous,
}

impl Tracker {
    /// A statement name as the next Bind or Describe will find it.
    pub(super) fn statement_named(&self, name: &str) -> Named<'_, Prepared> {
        let mut same_batch = true;
        for p in self.pending.iter().rev() {
            match p {
                Pending::Sync => same_batch = false,
                Pending::Define(d) if d.name == name => {
                    if let Defined::Statement(s) = &d.what {
                        if d.closed {
                            return Named::Unknown;
                        }
                        // In this batch: if its Parse fails, the Bind is skipped too.
                        if same_batch || !self.prepared.contains_key(name) {
                            return Named::Known(s);
                        }
                        return Named::Ambiguous;
                    }
                }
                _ => {}
            }
        }
        match self.prepared.get(name) {
            Some(p) => Named::Known(p),
            None => Named::Unknown,
        }
    }

    /// A portal name as the next Execute or Describe will find it.
    pub(super) fn portal_named(&self, name: &str) -> Named<'_, Portal> {
        let mut same_batch = true;
        for p in self.pending.iter().rev() {
            match p {
                Pending::Sync => same_batch = false,
                Pending::Define(d) if d.name == name => {
                    if let Defined::Portal(portal) = &d.what {
                        if d.closed {
                            return Named::Unknown;
                        }
                        if same_batch || !self.portals.contains_key(name) {
                            return Named::Known(portal);
                        }
                        return Named::Ambiguous;
                    }
                }
                _ => {}
            }
        }
        match self.portals.get(name) {
            Some(p) => Named::Known(p),
            None => Named::Unknown,
        }
    }

    /// Queues a definition until the server confirms it.
    pub(super) fn define(&mut self, name: &str, what: Defined) {
        self.pending.push_back(Pending::Define(Definition {
            name: name.to_string(),
            what,
            closed: false,
        }));
    }

    /// A Close: forgotten at once (if the Close is skipped the server keeps
    /// it, and the gateway refusing it is the safe side), and any definition
    /// still on its way is not kept.
    pub(super) fn close(&mut self, name: &str, statement: bool) {
        if statement {
            self.prepared.remove(name);
        } else {
            self.portals.remove(name);
        }
        for p in self.pending.iter_mut() {
            if let Pending::Define(d) = p {
                if d.name == name && matches!(d.what, Defined::Statement(_)) == statement {
                    d.closed = true;
                }
            }
        }
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
                if d.closed {
                    return;
                }
                match d.what {
                    Defined::Statement(s) => {
                        self.prepared.insert(d.name, s);
                    }
                    Defined::Portal(p) => {
                        self.portals.insert(d.name, *p);
                    }
                }
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
