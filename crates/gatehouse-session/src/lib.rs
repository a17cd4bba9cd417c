//! The core's session object and login sequence: how every protocol
//! adapter lets a caller in and reports what it does.
//!
//! An adapter turns its wire into a credential, a connection name and
//! actions; this crate does the rest the same way for every protocol:
//!
//! - [`Gatekeeper`] runs the login sequence (the credential checked, the
//!   connection looked up, the connect policy decided, audit mode included,
//!   the identity's session count checked), writing every refusal and the
//!   login itself to the evidence log before the adapter goes on. The
//!   adapter only reads the credential from its wire and words the
//!   [`LoginRefusal`] in its protocol's form.
//! - [`Session`] is an open session: it numbers actions, makes one read's
//!   decisions durable ([`WriteAhead`]) before anything is forwarded, files
//!   and takes approvals, waits for a held action's decision, records each
//!   finished action and closes the session. Adapters never touch the
//!   evidence log, the session recorder or the approval desk directly.
//! - [`Occupancy`] counts open connections and each identity's sessions
//!   across every listener, so one caller cannot take them all.

mod action;
mod backend;
mod failures;
pub mod gate;
mod listen;
mod login;
mod occupancy;
pub mod recording;
mod session;

pub use action::{Action, Finished};
pub use backend::{BackendPassword, BackendTls};
pub use listen::{accept_until_shutdown, stopped};
pub use login::{
    Admitted, Checked, Credential, Gatekeeper, Knock, LoginAttempt, LoginRefusal,
    DEFAULT_MAX_SESSIONS_PER_IDENTITY,
};
pub use occupancy::{ConnectionSlot, Occupancy, SessionSlot, MAX_REFUSING};
pub use session::{
    ApprovalStep, Committed, Counters, DecidedAction, Session, SessionDetails, WriteAhead,
};

/// An open session could not make its actions durable: nothing of them may
/// be forwarded, and the session ends.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The evidence log did not take the session's decisions.
    #[error("evidence log: {0}")]
    Evidence(#[from] gatehouse_core::AuditError),
    /// The approval desk could not file a request or take an approval.
    #[error("approvals: {0}")]
    Approval(#[from] gatehouse_core::ApprovalError),
}
