//! `[limits]`: what one caller can make the gateway hold or do, so that no
//! caller can hurt the others.

use gatehouse_postgres::SessionLimits;
use serde::Deserialize;

/// Approval requests one identity may file per minute, by default.
const DEFAULT_APPROVAL_REQUESTS_PER_MINUTE: u32 = 30;
/// Approval requests one identity may have pending at once, by default.
const DEFAULT_PENDING_APPROVALS_PER_IDENTITY: u32 = 100;
/// Failed logins one client address may make a minute, by default.
const DEFAULT_FAILED_LOGINS_PER_MINUTE: u32 = 100;

/// The checked `[limits]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// What the PostgreSQL listener enforces per connection and identity.
    pub session: SessionLimits,
    /// Approval requests one identity may file per minute.
    pub approval_requests_per_minute: u32,
    /// Approval requests one identity may have pending at once.
    pub max_pending_approvals_per_identity: u32,
    /// Failed logins one client address may make a minute (0: no limit).
    pub failed_logins_per_minute: u32,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LimitsSection {
    max_message_size: Option<Size>,
    max_statement_size: Option<Size>,
    max_masked_row_size: Option<Size>,
    max_connections: Option<u32>,
    max_sessions_per_identity: Option<u32>,
    approval_requests_per_minute: Option<u32>,
    max_pending_approvals_per_identity: Option<u32>,
    failed_logins_per_minute: Option<u32>,
}

/// A byte size: a number of bytes, or text such as `"8MiB"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(super) enum Size {
    Bytes(u64),
    Text(String),
}

impl Size {
    pub(super) fn bytes(&self) -> Result<u64, String> {
        let text = match self {
            Size::Bytes(n) => return Ok(*n),
            Size::Text(t) => t.trim(),
        };
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let n: u64 = number.parse().map_err(|_| {
            format!("{text:?} is not a size (write e.g. \"8MiB\", \"512KiB\" or a number of bytes)")
        })?;
        let factor: u64 = match unit.trim() {
            "" | "B" => 1,
            "KiB" | "kB" | "KB" => 1 << 10,
            "MiB" | "MB" => 1 << 20,
            "GiB" | "GB" => 1 << 30,
            other => {
                return Err(format!(
                    "unknown unit {other:?} in {text:?} (use B, KiB, MiB or GiB)"
                ))
            }
        };
        n.checked_mul(factor)
            .ok_or_else(|| format!("{text:?} is too large"))
    }
}

impl LimitsSection {
    /// The limits, or the first problem as (key, reason).
    pub(super) fn resolve(&self) -> Result<Limits, (String, String)> {
        let d = SessionLimits::default();
        let size = |key: &str,
                    v: &Option<Size>,
                    default: u64,
                    max: u64|
         -> Result<u64, (String, String)> {
            let n = match v {
                Some(s) => s.bytes().map_err(|r| (format!("limits.{key}"), r))?,
                None => default,
            };
            if n < 1024 || n > max {
                return Err((
                    format!("limits.{key}"),
                    format!("{n} bytes is out of range (1 KiB to {} MiB)", max >> 20),
                ));
            }
            Ok(n)
        };
        let message = size(
            "max_message_size",
            &self.max_message_size,
            d.max_message_size.into(),
            1 << 30,
        )?;
        let statement = size(
            "max_statement_size",
            &self.max_statement_size,
            d.max_statement_size as u64,
            message,
        )
        .map_err(|(k, r)| (k, format!("{r}; it may not exceed max_message_size")))?;
        let masked_row = size(
            "max_masked_row_size",
            &self.max_masked_row_size,
            d.max_masked_row_size.into(),
            1 << 30,
        )?;
        let positive = |key: &str, v: Option<u32>, default: u32| match v {
            Some(0) => Err((format!("limits.{key}"), "must be at least 1".to_string())),
            Some(n) => Ok(n),
            None => Ok(default),
        };
        Ok(Limits {
            session: SessionLimits {
                max_message_size: message as u32,
                max_statement_size: statement as usize,
                max_masked_row_size: masked_row as u32,
                max_connections: positive(
                    "max_connections",
                    self.max_connections,
                    d.max_connections,
                )?,
                max_sessions_per_identity: positive(
                    "max_sessions_per_identity",
                    self.max_sessions_per_identity,
                    d.max_sessions_per_identity,
                )?,
            },
            approval_requests_per_minute: positive(
                "approval_requests_per_minute",
                self.approval_requests_per_minute,
                DEFAULT_APPROVAL_REQUESTS_PER_MINUTE,
            )?,
            max_pending_approvals_per_identity: positive(
                "max_pending_approvals_per_identity",
                self.max_pending_approvals_per_identity,
                DEFAULT_PENDING_APPROVALS_PER_IDENTITY,
            )?,
            // 0 turns the limit off (callers behind one shared address).
            failed_logins_per_minute: self
                .failed_logins_per_minute
                .unwrap_or(DEFAULT_FAILED_LOGINS_PER_MINUTE),
        })
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            session: SessionLimits::default(),
            approval_requests_per_minute: DEFAULT_APPROVAL_REQUESTS_PER_MINUTE,
            max_pending_approvals_per_identity: DEFAULT_PENDING_APPROVALS_PER_IDENTITY,
            failed_logins_per_minute: DEFAULT_FAILED_LOGINS_PER_MINUTE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_bytes_with_units() {
        assert_eq!(Size::Text("8MiB".into()).bytes(), Ok(8 << 20));
        assert_eq!(Size::Text("512 KiB".into()).bytes(), Ok(512 << 10));
        assert_eq!(Size::Bytes(4096).bytes(), Ok(4096));
        assert!(Size::Text("8 parsecs".into()).bytes().is_err());
        assert!(Size::Text("MiB".into()).bytes().is_err());
    }
}
