//! `[[evidence.sinks]]`: live export of the evidence log to a SIEM.

use gatehouse_evidence::export::Format;
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SinkSection {
    name: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    url: Option<String>,
    address: Option<String>,
    format: Option<String>,
    batch_max: Option<usize>,
    bearer_token_file: Option<String>,
}

/// A checked sink.
#[derive(Debug, Clone)]
pub struct SinkSpec {
    /// Its name: in logs and the cursor file's name.
    pub name: String,
    /// Where events go.
    pub target: SinkTarget,
    /// The format of each event.
    pub format: Format,
    /// Events per delivery at most.
    pub batch_max: usize,
}

/// Where a sink delivers.
#[derive(Debug, Clone)]
pub enum SinkTarget {
    /// POST batches of lines to this URL.
    Http {
        /// The endpoint.
        url: String,
        /// A file holding a bearer token to send, if any.
        bearer_token_file: Option<PathBuf>,
    },
    /// RFC 5424 messages over TCP (RFC 6587 octet counting) to `host:port`.
    Syslog {
        /// `host:port`.
        address: String,
    },
}

const DEFAULT_BATCH: usize = 500;
const MAX_BATCH: usize = 10_000;

fn valid_sink_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl SinkSection {
    /// The name as written.
    pub(super) fn name(&self) -> &str {
        self.name.as_deref().unwrap_or_default()
    }

    /// Checks one sink; `key` is `evidence.sinks[i]`.
    pub(super) fn resolve(
        &self,
        key: &str,
        path: impl Fn(&str) -> PathBuf,
        problem: &mut dyn FnMut(String, String),
    ) -> Option<SinkSpec> {
        let mut ok = true;
        let mut bad = |field: &str, reason: String| {
            ok = false;
            problem(format!("{key}.{field}"), reason);
        };
        let name = self.name().to_string();
        if !valid_sink_name(&name) {
            bad(
                "name",
                format!("{name:?} cannot name a sink: use 1-64 letters, digits, '-' or '_' (it names the sink's cursor file)"),
            );
        }
        let (target, default_format) = match self.kind.as_deref() {
            Some("http") => {
                if self.address.is_some() {
                    bad("address", "an http sink takes `url`, not `address`".into());
                }
                let url = self.url.clone().unwrap_or_default();
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    bad("url", format!("{url:?} is not an http:// or https:// URL"));
                }
                let bearer_token_file = self.bearer_token_file.as_deref().map(&path);
                if let Some(f) = &bearer_token_file {
                    if !f.is_file() {
                        bad(
                            "bearer_token_file",
                            format!("{} does not exist", f.display()),
                        );
                    }
                }
                (
                    SinkTarget::Http {
                        url,
                        bearer_token_file,
                    },
                    Format::Jsonl,
                )
            }
            Some("syslog") => {
                if self.url.is_some() {
                    bad(
                        "url",
                        "a syslog sink takes `address` (host:port), not `url`".into(),
                    );
                }
                if self.bearer_token_file.is_some() {
                    bad("bearer_token_file", "only http sinks send a token".into());
                }
                let address = self.address.clone().unwrap_or_default();
                let port_ok = address
                    .rsplit_once(':')
                    .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
                if !port_ok {
                    bad(
                        "address",
                        format!("{address:?} is not host:port, e.g. \"siem.example.com:6514\""),
                    );
                }
                (SinkTarget::Syslog { address }, Format::Cef)
            }
            other => {
                bad(
                    "type",
                    format!(
                        "{} is not a sink type: use \"http\" or \"syslog\"",
                        other.map_or("nothing".into(), |o| format!("{o:?}"))
                    ),
                );
                return None;
            }
        };
        let format = match self.format.as_deref() {
            None => default_format,
            Some(f) => f.parse().unwrap_or_else(|e: String| {
                bad("format", e);
                default_format
            }),
        };
        let batch_max = self.batch_max.unwrap_or(DEFAULT_BATCH);
        if !(1..=MAX_BATCH).contains(&batch_max) {
            bad(
                "batch_max",
                format!("{batch_max} is not between 1 and {MAX_BATCH} (events per delivery)"),
            );
        }
        ok.then_some(SinkSpec {
            name,
            target,
            format,
            batch_max,
        })
    }
}
