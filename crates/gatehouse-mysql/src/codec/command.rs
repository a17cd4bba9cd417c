//! Command bytes (`COM_*`): the first byte of every message a client sends
//! once logged in.

/// A command the gateway knows by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Command {
    Quit,
    InitDb,
    Query,
    FieldList,
    Statistics,
    ProcessKill,
    Ping,
    ChangeUser,
    BinlogDump,
    RegisterSlave,
    StmtPrepare,
    StmtExecute,
    StmtSendLongData,
    StmtClose,
    StmtReset,
    SetOption,
    StmtFetch,
    ResetConnection,
    /// Any other byte: refused.
    Other(u8),
}

impl Command {
    pub(crate) fn of(byte: u8) -> Self {
        match byte {
            0x01 => Self::Quit,
            0x02 => Self::InitDb,
            0x03 => Self::Query,
            0x04 => Self::FieldList,
            0x09 => Self::Statistics,
            0x0C => Self::ProcessKill,
            0x0E => Self::Ping,
            0x11 => Self::ChangeUser,
            0x12 => Self::BinlogDump,
            0x15 => Self::RegisterSlave,
            0x16 => Self::StmtPrepare,
            0x17 => Self::StmtExecute,
            0x18 => Self::StmtSendLongData,
            0x19 => Self::StmtClose,
            0x1A => Self::StmtReset,
            0x1B => Self::SetOption,
            0x1C => Self::StmtFetch,
            0x1F => Self::ResetConnection,
            b => Self::Other(b),
        }
    }

    /// The command's name as records and errors show it.
    pub(crate) fn name(self) -> String {
        match self {
            Self::Quit => "COM_QUIT".into(),
            Self::InitDb => "COM_INIT_DB".into(),
            Self::Query => "COM_QUERY".into(),
            Self::FieldList => "COM_FIELD_LIST".into(),
            Self::Statistics => "COM_STATISTICS".into(),
            Self::ProcessKill => "COM_PROCESS_KILL".into(),
            Self::Ping => "COM_PING".into(),
            Self::ChangeUser => "COM_CHANGE_USER".into(),
            Self::BinlogDump => "COM_BINLOG_DUMP".into(),
            Self::RegisterSlave => "COM_REGISTER_SLAVE".into(),
            Self::StmtPrepare => "COM_STMT_PREPARE".into(),
            Self::StmtExecute => "COM_STMT_EXECUTE".into(),
            Self::StmtSendLongData => "COM_STMT_SEND_LONG_DATA".into(),
            Self::StmtClose => "COM_STMT_CLOSE".into(),
            Self::StmtReset => "COM_STMT_RESET".into(),
            Self::SetOption => "COM_SET_OPTION".into(),
            Self::StmtFetch => "COM_STMT_FETCH".into(),
            Self::ResetConnection => "COM_RESET_CONNECTION".into(),
            Self::Other(b) => format!("command 0x{b:02x}"),
        }
    }
}
