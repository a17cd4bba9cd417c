//! This node's id: `[server] node_id`, or the older `[evidence] node`, or
//! one generated into the data directory on first start (so it stays with
//! the node's data, its evidence log, across restarts and host renames).

use std::path::{Path, PathBuf};

/// The file in the data directory holding a generated node id.
pub const NODE_ID_FILE: &str = "node_id";

/// The id sections are checked with when the node's own is wrong.
pub(super) const PLACEHOLDER: &str = "gatehouse";

/// This node's id, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeIdentity {
    /// The id: in every evidence entry, on every session in a shared store.
    pub id: String,
    /// Where the id must be written at start (generated, not yet kept).
    pub generate_into: Option<PathBuf>,
}

impl NodeIdentity {
    /// Keeps a generated id in the data directory (nothing when configured
    /// or already kept).
    pub fn keep(&self) -> std::io::Result<()> {
        match &self.generate_into {
            Some(path) => std::fs::write(path, format!("{}\n", self.id)),
            None => Ok(()),
        }
    }
}

/// A name usable as a node id, in entries and note origins: 1 to 128
/// bytes, no spaces, control characters or `+` (the rule `[evidence] node`
/// always had). Generated ids use letters, digits and dashes only.
pub(super) fn valid(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && !s.contains(|c: char| c.is_whitespace() || c.is_control() || c == '+')
}

/// A host name as far as a generated id may use it.
fn plain(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'))
}

/// This machine's host name, as far as it is a valid id.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| plain(h) && h.len() <= 64)
        .unwrap_or_else(|| "gatehouse".into())
}

/// Resolves the id. A data directory that already holds an evidence log
/// but no id file keeps the host name, the id its entries were written
/// under before ids were generated.
pub(super) fn resolve(
    server_node_id: Option<&str>,
    evidence_node: Option<&str>,
    data_dir: &Path,
    problem: &mut dyn FnMut(String, String),
) -> Option<NodeIdentity> {
    let configured = match (server_node_id, evidence_node) {
        (Some(a), Some(b)) if a != b => {
            problem(
                "server.node_id".into(),
                format!("{a:?} differs from evidence.node {b:?}: set the node's id once, in [server] node_id"),
            );
            return None;
        }
        (Some(a), _) => Some(("server.node_id", a)),
        (None, Some(b)) => Some(("evidence.node", b)),
        (None, None) => None,
    };
    if let Some((key, id)) = configured {
        if !valid(id) {
            problem(
                key.into(),
                format!("{id:?} cannot name a node: no spaces, control characters or '+', at most 128 bytes (e.g. \"gw-1\")"),
            );
            return None;
        }
        return Some(NodeIdentity {
            id: id.to_string(),
            generate_into: None,
        });
    }
    let file = data_dir.join(NODE_ID_FILE);
    match std::fs::read_to_string(&file) {
        Ok(text) => {
            let id = text.trim();
            if valid(id) {
                return Some(NodeIdentity {
                    id: id.to_string(),
                    generate_into: None,
                });
            }
            problem(
                "server.node_id".into(),
                format!("{} holds {id:?}, which cannot name a node; correct or remove the file, or set [server] node_id", file.display()),
            );
            None
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let host = host_name();
            let id = if data_dir.join("evidence.db").exists() {
                host
            } else {
                let suffix: u32 = rand::random();
                let mut id = host;
                id.truncate(64 - 7);
                format!("{id}-{:06x}", suffix & 0xff_ffff)
            };
            Some(NodeIdentity {
                id,
                generate_into: Some(file),
            })
        }
        Err(e) => {
            problem(
                "server.node_id".into(),
                format!("cannot read {}: {e}", file.display()),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        server: Option<&str>,
        evidence: Option<&str>,
        dir: &Path,
    ) -> Result<NodeIdentity, Vec<String>> {
        let mut problems = Vec::new();
        let got = resolve(server, evidence, dir, &mut |k, r| {
            problems.push(format!("{k}: {r}"))
        });
        got.ok_or(problems)
    }

    #[test]
    fn configured_generated_kept_and_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(run(Some("gw-2"), None, dir.path()).unwrap().id, "gw-2");
        assert_eq!(run(None, Some("gw-3"), dir.path()).unwrap().id, "gw-3");
        assert_eq!(
            run(Some("gw-3"), Some("gw-3"), dir.path()).unwrap().id,
            "gw-3"
        );
        let e = run(Some("gw-2"), Some("gw-3"), dir.path()).unwrap_err();
        assert!(
            e[0].contains("server.node_id") && e[0].contains("evidence.node"),
            "{e:?}"
        );
        let e = run(Some("gw 2"), None, dir.path()).unwrap_err();
        assert!(e[0].contains("cannot name a node"), "{e:?}");

        let generated = run(None, None, dir.path()).unwrap();
        assert!(valid(&generated.id), "{generated:?}");
        assert_eq!(
            generated.generate_into.as_deref(),
            Some(dir.path().join(NODE_ID_FILE).as_path())
        );
        generated.keep().unwrap();
        let again = run(None, None, dir.path()).unwrap();
        assert_eq!(
            again,
            NodeIdentity {
                id: generated.id,
                generate_into: None
            }
        );

        std::fs::write(dir.path().join(NODE_ID_FILE), "not valid\n").unwrap();
        let e = run(None, None, dir.path()).unwrap_err();
        assert!(e[0].contains("correct or remove the file"), "{e:?}");
    }

    #[test]
    fn an_existing_log_keeps_the_host_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("evidence.db"), b"").unwrap();
        assert_eq!(run(None, None, dir.path()).unwrap().id, host_name());
    }
}
