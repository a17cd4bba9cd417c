//! What one caller can make the gateway hold or do, so that no caller can
//! hurt the others (the counts they are checked against are `gatehouse_session::Occupancy`).

/// Limits on one caller's use of the gateway (`[limits]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionLimits {
    /// Largest client message the gateway reads whole (Query, Parse, Bind…).
    pub max_message_size: u32,
    /// Longest statement text the gateway analyzes; longer ones are refused
    /// (parsing costs up to about 1 KiB of memory per byte of text).
    pub max_statement_size: usize,
    /// Client connections open at once, handshakes included.
    pub max_connections: u32,
    /// Sessions one identity may have open at once, across every listener:
    /// the gateway gives it to its `gatehouse_session::Gatekeeper`, which
    /// counts them.
    pub max_sessions_per_identity: u32,
    /// Largest result row masking holds whole (a larger one ends the session:
    /// it cannot be masked, and is not sent unmasked).
    pub max_masked_row_size: u32,
}

impl Default for SessionLimits {
    fn default() -> Self {
        Self {
            max_message_size: 8 << 20,
            max_statement_size: 1 << 20,
            max_connections: 1000,
            max_sessions_per_identity: gatehouse_session::DEFAULT_MAX_SESSIONS_PER_IDENTITY,
            max_masked_row_size: 64 << 20,
        }
    }
}
