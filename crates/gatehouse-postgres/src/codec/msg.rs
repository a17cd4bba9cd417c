//! Message type bytes, named: the predicates and matches that pick messages
//! read as the protocol's names. Client and server reuse letters for
//! different messages, so each side has its own module.

/// Messages a client sends.
pub mod frontend {
    /// Query (simple protocol).
    pub const QUERY: u8 = b'Q';
    /// Parse.
    pub const PARSE: u8 = b'P';
    /// Bind.
    pub const BIND: u8 = b'B';
    /// Describe.
    pub const DESCRIBE: u8 = b'D';
    /// Execute.
    pub const EXECUTE: u8 = b'E';
    /// Sync.
    pub const SYNC: u8 = b'S';
    /// Close.
    pub const CLOSE: u8 = b'C';
    /// FunctionCall (fast path).
    pub const FUNCTION_CALL: u8 = b'F';
    /// Terminate.
    pub const TERMINATE: u8 = b'X';
    /// Flush.
    pub const FLUSH: u8 = b'H';
}

/// Messages a server sends.
pub mod backend {
    /// CommandComplete.
    pub const COMMAND_COMPLETE: u8 = b'C';
    /// ErrorResponse.
    pub const ERROR_RESPONSE: u8 = b'E';
    /// EmptyQueryResponse.
    pub const EMPTY_QUERY_RESPONSE: u8 = b'I';
    /// PortalSuspended.
    pub const PORTAL_SUSPENDED: u8 = b's';
    /// ReadyForQuery.
    pub const READY_FOR_QUERY: u8 = b'Z';
    /// ParameterStatus.
    pub const PARAMETER_STATUS: u8 = b'S';
    /// ParseComplete.
    pub const PARSE_COMPLETE: u8 = b'1';
    /// BindComplete.
    pub const BIND_COMPLETE: u8 = b'2';
    /// CloseComplete.
    pub const CLOSE_COMPLETE: u8 = b'3';
    /// RowDescription.
    pub const ROW_DESCRIPTION: u8 = b'T';
    /// NoData.
    pub const NO_DATA: u8 = b'n';
    /// DataRow.
    pub const DATA_ROW: u8 = b'D';
    /// CopyOutResponse.
    pub const COPY_OUT_RESPONSE: u8 = b'H';
    /// CopyData.
    pub const COPY_DATA: u8 = b'd';
    /// NoticeResponse.
    pub const NOTICE_RESPONSE: u8 = b'N';
    /// NotificationResponse.
    pub const NOTIFICATION_RESPONSE: u8 = b'A';
    /// FunctionCallResponse.
    pub const FUNCTION_CALL_RESPONSE: u8 = b'V';
    /// ReadyForQuery's status byte when no transaction is open.
    pub const IDLE: u8 = b'I';
}
