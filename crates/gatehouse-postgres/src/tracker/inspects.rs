//! Which messages the tracker must see whole; every other message is
//! forwarded as its bytes arrive.

use crate::codec::msg::{backend as be, frontend as fe};

/// Frontend message types the tracker needs to see whole (a Describe: a
/// statement kept back from the server is described by the gateway's own
/// means, and with masking each answer tells a result's columns).
pub(crate) fn frontend_inspects(ty: u8) -> bool {
    use fe::*;
    matches!(
        ty,
        QUERY | PARSE | BIND | DESCRIBE | EXECUTE | SYNC | CLOSE | FUNCTION_CALL | TERMINATE
    )
}

/// Backend message types the tracker needs to see whole.
pub(crate) fn backend_inspects(ty: u8) -> bool {
    use be::*;
    matches!(
        ty,
        COMMAND_COMPLETE
            | ERROR_RESPONSE
            | EMPTY_QUERY_RESPONSE
            | PORTAL_SUSPENDED
            | READY_FOR_QUERY
            | PARAMETER_STATUS
            | PARSE_COMPLETE
            | BIND_COMPLETE
            | CLOSE_COMPLETE
    )
}

/// With masking, everything that carries values or describes them:
/// RowDescription, NoData, DataRow, CopyOutResponse, CopyData,
/// NoticeResponse and NotificationResponse.
pub(crate) fn backend_inspects_masked(ty: u8) -> bool {
    use be::*;
    backend_inspects(ty)
        || matches!(
            ty,
            ROW_DESCRIPTION
                | NO_DATA
                | DATA_ROW
                | COPY_OUT_RESPONSE
                | COPY_DATA
                | NOTICE_RESPONSE
                | NOTIFICATION_RESPONSE
                | FUNCTION_CALL_RESPONSE
        )
}
