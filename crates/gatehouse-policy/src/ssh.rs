//! Deciding one SSH channel's action: `ssh:shell`, `ssh:exec`, `ssh:sftp`
//! or `ssh:port-forward` on the account it runs as (an `SshAccount` inside
//! the connection), with the command, its words, the terminal and the
//! forwarding destination as context.

use crate::decide::{s, set, uid};
use crate::http::Asked;
use crate::{Decision, PolicyEngine};
use cedar_policy::{Entity, RestrictedExpression};
use gatehouse_core::{Identity, Timestamp};
use std::collections::HashSet;
use std::net::IpAddr;

/// The SSH actions: `ssh:shell`, `ssh:exec`, `ssh:sftp` and
/// `ssh:port-forward` are in the group `ssh:session`; `ssh:agent-forward`
/// and `ssh:remote-forward` are not (a policy allows them by name).
pub const SSH_ACTIONS: &[&str] = &[
    "ssh:shell",
    "ssh:exec",
    "ssh:sftp",
    "ssh:port-forward",
    "ssh:agent-forward",
    "ssh:remote-forward",
];

/// One SSH action as the policy sees it.
pub struct SshRequestFacts<'a> {
    /// The caller.
    pub identity: &'a Identity,
    /// The connection name.
    pub connection: &'a str,
    /// The caller's address.
    pub client_ip: IpAddr,
    /// Now.
    pub now: Timestamp,
    /// Whether a human approved exactly this action.
    pub approved: bool,
    /// One of [`SSH_ACTIONS`] (`ssh:exec`).
    pub action: &'a str,
    /// The target host and port, as configured.
    pub host: &'a str,
    /// Its port.
    pub port: u16,
    /// The account on the target.
    pub user: &'a str,
    /// exec: the command as sent; `""` otherwise.
    pub command: &'a str,
    /// A terminal was asked for, and its `TERM`.
    pub pty: Option<&'a str>,
    /// Variables the caller asked to set, as `NAME=value`.
    pub env: &'a [String],
    /// The subsystem (`sftp`), `""` when none.
    pub subsystem: &'a str,
    /// sftp: the file operation (`open-write`), `""` for the subsystem itself.
    pub operation: &'a str,
    /// sftp: the operation's paths, as sent.
    pub paths: &'a [String],
    /// port-forward: the destination as asked.
    pub forward: Option<(&'a str, u16)>,
}

/// Actions a permit must name to allow (not in `ssh:session`, not granted
/// by a permit of every action).
const NAMED_ONLY: &[&str] = &["ssh:agent-forward", "ssh:remote-forward"];

/// Words that, first in a command, make another word the one that runs
/// (or make it a compound command): reserved words and the builtins that
/// run or read commands.
const INDIRECT: &[&str] = &[
    "!", "{", "}", "(", ")", "if", "then", "else", "elif", "fi", "for", "while", "until", "do",
    "done", "case", "esac", "select", "function", "time", "coproc", "exec", "eval", "command",
    "builtin", ".", "source", "[[",
];

/// `command`'s words as a POSIX shell splits them (quotes and backslashes
/// removed), and whether it is compound: it holds a control operator,
/// redirection, expansion or substitution (`;`, `&`, `|`, `<`, `>`, `$`,
/// `(`, `)`, a backquote or a line end outside single quotes), or its
/// first word is a variable assignment (`X=1 rm …`), a reserved word or a
/// builtin that runs another command (`exec`, `eval`, `command`, `!`…):
/// its first word alone does not say what runs. `None` when it cannot be
/// split (an unterminated quote or a trailing backslash): a shell may
/// still run it, so callers treat it as compound.
pub fn shell_words(command: &str) -> Option<(Vec<String>, bool)> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut compound = false;
    let mut chars = command.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => word.push(c),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => match chars.next()? {
                            c @ ('$' | '`' | '"' | '\\') => word.push(c),
                            '\n' => {}
                            c => {
                                word.push('\\');
                                word.push(c);
                            }
                        },
                        c => {
                            compound |= matches!(c, '$' | '`');
                            word.push(c);
                        }
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next()? {
                    '\n' => {}
                    c => word.push(c),
                }
            }
            c => {
                compound |= matches!(
                    c,
                    ';' | '&' | '|' | '<' | '>' | '$' | '`' | '\n' | '(' | ')'
                );
                // A glob or brace expansion (or a leading ~) in the first
                // word: the program is what the host's shell expands it to.
                compound |= words.is_empty()
                    && (matches!(c, '*' | '?' | '[' | '{') || (c == '~' && !in_word));
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    if let Some(first) = words.first() {
        let assignment = first.split_once('=').is_some_and(|(name, _)| {
            !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
        compound |= assignment || INDIRECT.contains(&first.as_str());
    }
    Some((words, compound))
}

impl PolicyEngine {
    /// May the SSH action run? An action outside [`SSH_ACTIONS`] is
    /// refused (fail closed).
    pub fn decide_ssh(&self, r: &SshRequestFacts<'_>) -> Decision {
        let object = match (r.action, r.forward) {
            ("ssh:exec", _) => format!("`{}`", r.command),
            ("ssh:port-forward", Some((h, p))) => format!("to {h}:{p}"),
            ("ssh:remote-forward", Some((h, p))) => format!("listening on {h}:{p}"),
            ("ssh:sftp", _) if !r.operation.is_empty() => {
                format!("sftp {} {}", r.operation, r.paths.join(" "))
            }
            ("ssh:sftp", _) => "sftp".to_string(),
            ("ssh:agent-forward", _) => "the caller's SSH agent".to_string(),
            _ => "a shell".to_string(),
        };
        let what = format!(
            "{} ({} {object} as {} on {})",
            r.identity.subject, r.action, r.user, r.connection
        );
        if !SSH_ACTIONS.contains(&r.action) {
            return Decision::Deny {
                reason: format!("{what}: the gateway does not know the action"),
                policies: Vec::new(),
            };
        }
        // A command that cannot be split may still run: compound, no words.
        let (argv, compound) = shell_words(r.command).unwrap_or((Vec::new(), true));
        let program = argv.first().cloned().unwrap_or_default();
        let (forward_host, forward_port) = r.forward.unwrap_or(("", 0));
        let resource = |connection: &cedar_policy::EntityUid| {
            let id = format!("{}/{}", r.connection, r.user);
            Entity::new(
                uid(&self.names.ssh_account, &id),
                [
                    ("connection".to_string(), s(r.connection)),
                    ("host".to_string(), s(r.host)),
                    (
                        "port".to_string(),
                        RestrictedExpression::new_long(i64::from(r.port)),
                    ),
                    ("user".to_string(), s(r.user)),
                ]
                .into(),
                HashSet::from([connection.clone()]),
            )
            .map(Some)
            .map_err(|e| e.to_string())
        };
        let decision = self.decide_on(
            &what,
            &Asked {
                identity: r.identity,
                connection: r.connection,
                kind: "ssh",
                client_ip: r.client_ip,
                now: r.now,
                approved: r.approved,
                action: r.action,
            },
            resource,
            [
                ("command", s(r.command)),
                ("argv", set(argv.iter().map(String::as_str))),
                ("program", s(&program)),
                ("compound", RestrictedExpression::new_bool(compound)),
                ("pty", RestrictedExpression::new_bool(r.pty.is_some())),
                ("term", s(r.pty.unwrap_or(""))),
                ("env", set(r.env.iter().map(String::as_str))),
                ("subsystem", s(r.subsystem)),
                ("operation", s(r.operation)),
                ("path", s(r.paths.first().map_or("", String::as_str))),
                ("target_path", s(r.paths.get(1).map_or("", String::as_str))),
                ("paths", set(r.paths.iter().map(String::as_str))),
                ("forward_host", s(forward_host)),
                (
                    "forward_port",
                    RestrictedExpression::new_long(i64::from(forward_port)),
                ),
            ],
        );
        // Forwarding the caller's agent, or a listener on the host, is
        // allowed only by a permit that names it: a permit of every action
        // (written before these existed) does not grant them.
        if let (true, Decision::Allow { policies, .. }) =
            (NAMED_ONLY.contains(&r.action), &decision)
        {
            if !policies.iter().any(|id| self.names_action(id, r.action)) {
                return Decision::Deny {
                    reason: format!(
                        "{what}: {} is allowed only by a permit that names it (action == Gatehouse::Action::\"{}\"), and none does",
                        r.action, r.action
                    ),
                    policies: Vec::new(),
                };
            }
        }
        decision
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    const POLICY: &str = r#"
@id("deploy-may-use-the-host") permit (principal == Gatehouse::Identity::"deploy", action in Gatehouse::Action::"ssh:session", resource in Gatehouse::Connection::"web-1");
@id("no-rm") forbid (principal, action == Gatehouse::Action::"ssh:exec", resource) when { context.program == "rm" };
@id("restart-needs-approval") @approval("ops") forbid (principal, action == Gatehouse::Action::"ssh:exec", resource) when { context.command like "systemctl restart *" && !context.approved };
@id("no-compound-as-root") forbid (principal, action == Gatehouse::Action::"ssh:exec", resource) when { context.compound && resource.user == "root" };
@id("everything-for-admins") permit (principal == Gatehouse::Identity::"admin", action, resource);
@id("forward-only-to-db") forbid (principal, action == Gatehouse::Action::"ssh:port-forward", resource) unless { context.forward_port == 5432 };
"#;

    fn engine() -> PolicyEngine {
        PolicyEngine::from_sources(&[(PathBuf::from("ssh.cedar"), POLICY.to_string())])
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn ask(e: &PolicyEngine, action: &str, user: &str, command: &str, approved: bool) -> Decision {
        let id = Identity::with_service_token("deploy", vec![], "t");
        e.decide_ssh(&SshRequestFacts {
            identity: &id,
            connection: "web-1",
            client_ip: "127.0.0.1".parse().unwrap(),
            now: Timestamp::now(),
            approved,
            action,
            host: "10.0.0.5",
            port: 22,
            user,
            command,
            pty: None,
            env: &[],
            subsystem: "",
            operation: "",
            paths: &[],
            forward: (action == "ssh:port-forward").then_some(("db", command.parse().unwrap_or(0))),
        })
    }

    #[test]
    fn commands_are_decided_by_their_words() {
        let e = engine();
        assert!(matches!(
            ask(&e, "ssh:exec", "deploy", "uptime", false),
            Decision::Allow { .. }
        ));
        assert!(matches!(
            ask(&e, "ssh:shell", "deploy", "", false),
            Decision::Allow { .. }
        ));
        assert!(matches!(
            ask(&e, "ssh:exec", "deploy", "'rm' -rf /", false),
            Decision::Deny { .. }
        ));
        assert!(matches!(
            ask(&e, "ssh:exec", "deploy", "systemctl restart nginx", false),
            Decision::Review { .. }
        ));
        assert!(matches!(
            ask(&e, "ssh:exec", "deploy", "systemctl restart nginx", true),
            Decision::Allow { .. }
        ));
        assert!(matches!(
            ask(&e, "ssh:exec", "root", "true; rm -rf /", false),
            Decision::Deny { .. }
        ));
        assert!(matches!(
            ask(&e, "ssh:exec", "root", "uptime", false),
            Decision::Allow { .. }
        ));
        // A command that cannot be split is compound (a shell may still run it).
        assert!(matches!(
            ask(&e, "ssh:exec", "root", "uptime \\", false),
            Decision::Deny { .. }
        ));
        assert!(matches!(
            ask(&e, "ssh:port-forward", "deploy", "5432", false),
            Decision::Allow { .. }
        ));
        assert!(matches!(
            ask(&e, "ssh:port-forward", "deploy", "22", false),
            Decision::Deny { .. }
        ));
        assert!(matches!(
            ask(&e, "ssh:x11", "deploy", "", false),
            Decision::Deny { .. }
        ));
    }

    #[test]
    fn forwarding_is_allowed_only_by_a_permit_that_names_it() {
        let e = PolicyEngine::from_sources(&[(
            PathBuf::from("f.cedar"),
            format!(
                "{POLICY}\n@id(\"deploy-forwards-agent\") permit (principal == Gatehouse::Identity::\"deploy\", action == Gatehouse::Action::\"ssh:agent-forward\", resource);"
            ),
        )])
        .unwrap_or_else(|e| panic!("{e}"));
        let facts = |who: &'static str, action: &'static str| {
            let id = Identity::with_service_token(who, vec![], "t");
            e.decide_ssh(&SshRequestFacts {
                identity: &id,
                connection: "web-1",
                client_ip: "127.0.0.1".parse().unwrap(),
                now: Timestamp::now(),
                approved: false,
                action,
                host: "10.0.0.5",
                port: 22,
                user: "deploy",
                command: "",
                pty: None,
                env: &[],
                subsystem: "",
                operation: "",
                paths: &[],
                forward: Some(("127.0.0.1", 9000)),
            })
        };
        // A permit of every action grants every other action, not these.
        assert!(matches!(facts("admin", "ssh:exec"), Decision::Allow { .. }));
        let d = facts("admin", "ssh:agent-forward");
        assert!(
            matches!(&d, Decision::Deny { reason, .. } if reason.contains("allowed only by a permit that names it")),
            "{d:?}"
        );
        assert!(matches!(
            facts("admin", "ssh:remote-forward"),
            Decision::Deny { .. }
        ));
        // ssh:session does not include them either; naming does.
        assert!(matches!(
            facts("deploy", "ssh:remote-forward"),
            Decision::Deny { .. }
        ));
        assert!(matches!(
            facts("deploy", "ssh:agent-forward"),
            Decision::Allow { .. }
        ));
    }

    #[test]
    fn words_are_split_as_a_posix_shell_splits_them() {
        let w = |c: &str| shell_words(c);
        assert_eq!(
            w("ls -la /tmp"),
            Some((vec!["ls".into(), "-la".into(), "/tmp".into()], false))
        );
        assert_eq!(
            w("echo 'a b' \"c d\" e\\ f"),
            Some((
                vec!["echo".into(), "a b".into(), "c d".into(), "e f".into()],
                false
            ))
        );
        assert_eq!(
            w("echo \"$HOME\""),
            Some((vec!["echo".into(), "$HOME".into()], true))
        );
        assert_eq!(
            w("echo '$HOME; x'"),
            Some((vec!["echo".into(), "$HOME; x".into()], false))
        );
        assert_eq!(w("a;b").map(|x| x.1), Some(true));
        assert_eq!(w("a | b").map(|x| x.1), Some(true));
        assert_eq!(w("a\nb").map(|x| x.1), Some(true));
        assert_eq!(w("X=1 rm -rf /").map(|x| x.1), Some(true));
        assert_eq!(w("exec rm -rf /").map(|x| x.1), Some(true));
        assert_eq!(w("! rm x").map(|x| x.1), Some(true));
        assert_eq!(w("rm a=b").map(|x| x.1), Some(false));
        assert_eq!(w("{rm,-rf,/srv}").map(|x| x.1), Some(true));
        assert_eq!(w("/bin/r[m] -rf /x").map(|x| x.1), Some(true));
        assert_eq!(w("~/bin/tool").map(|x| x.1), Some(true));
        assert_eq!(w("ls *.log").map(|x| x.1), Some(false));
        assert_eq!(w("'r*m' x").map(|x| x.1), Some(false));
        assert_eq!(w("echo 'open"), None);
        assert_eq!(w("echo \\"), None);
        assert_eq!(w(""), Some((vec![], false)));
        assert_eq!(w("''"), Some((vec!["".into()], false)));
    }

    proptest::proptest! {
        /// Any command is split or refused without a panic; plain words
        /// (quoted or not) come back as they were, and are not compound.
        #[test]
        fn any_command_splits_or_is_refused(command in ".{0,200}") {
            let _ = shell_words(&command);
        }

        #[test]
        fn plain_words_come_back(words in proptest::collection::vec("[a-z0-9._/-]{1,12}", 1..8), quote in proptest::prelude::any::<bool>()) {
            // A reserved word or indirect builtin first is compound by design.
            proptest::prop_assume!(!INDIRECT.contains(&words[0].as_str()));
            let command = words
                .iter()
                .map(|w| if quote { format!("'{w}'") } else { w.clone() })
                .collect::<Vec<_>>()
                .join(" ");
            let (got, compound) = shell_words(&command).unwrap();
            proptest::prop_assert_eq!(got, words);
            proptest::prop_assert!(!compound);
        }
    }
}
