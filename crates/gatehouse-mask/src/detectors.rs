//! The built-in detectors: what sensitive values look like.
//!
//! Patterns run on bytes in ASCII mode (`(?-u)`), so `\d`, `\b` and `\s` are
//! ASCII and the lazy DFA is never disabled by Unicode word boundaries. Where
//! a pattern has capture groups, only the first group that took part in the
//! match is masked (the value of `password=...`, not the key).

use crate::strategy::Strategy;
use crate::validate::Validator;

/// A built-in detector's definition.
#[derive(Debug, Clone, Copy)]
pub struct BuiltinDetector {
    /// Name used in the configuration, in masks and in records.
    pub name: &'static str,
    /// What it finds, for documentation and `--help`.
    pub description: &'static str,
    /// The candidate pattern.
    pub pattern: &'static str,
    /// The check a candidate must pass.
    pub validator: Validator,
    /// The strategy used unless the configuration says otherwise.
    pub strategy: Strategy,
    /// Whether it belongs to the `secrets` group.
    pub secret: bool,
}

/// Every built-in detector, in priority order (an earlier one wins an overlap
/// that starts at the same place).
pub const BUILTIN: &[BuiltinDetector] = &[
    BuiltinDetector {
        name: "private_key",
        description: "PEM private key blocks (RSA, EC, OpenSSH, PKCS#8, PGP)",
        pattern: r"(?-u)-----BEGIN[A-Z ]{0,30} PRIVATE KEY(?: BLOCK)?-----(?s:.*?)(?:-----END[A-Z ]{0,30} PRIVATE KEY(?: BLOCK)?-----|\z)",
        validator: Validator::None,
        strategy: Strategy::Redact,
        secret: true,
    },
    BuiltinDetector {
        name: "jwt",
        description: "JSON Web Tokens (three base64url parts, header and payload JSON objects)",
        pattern: r"(?-u)\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*",
        validator: Validator::None,
        strategy: Strategy::Redact,
        secret: true,
    },
    BuiltinDetector {
        name: "aws_access_key",
        description: "AWS access key ids (AKIA..., ASIA...)",
        pattern: r"(?-u)\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[0-9A-Z]{16}\b",
        validator: Validator::None,
        strategy: Strategy::Redact,
        secret: true,
    },
    BuiltinDetector {
        name: "api_key",
        description: "API keys with a known prefix: GitHub, GitLab, Slack, Stripe, Google, OpenAI, Anthropic, npm, Gatehouse",
        pattern: r"(?-u)\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255}|glpat-[A-Za-z0-9_-]{20,}|xox[abposr]-[A-Za-z0-9-]{10,}|[sr]k_(?:live|test)_[A-Za-z0-9]{16,}|AIza[0-9A-Za-z_-]{35}|sk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}|npm_[A-Za-z0-9]{36}|gatehouse_(?:st|admin)_[0-9a-f_]{20,})",
        validator: Validator::None,
        strategy: Strategy::Redact,
        secret: true,
    },
    BuiltinDetector {
        name: "bearer_token",
        description: "HTTP bearer and basic credentials (Authorization header values)",
        pattern: r"(?i-u)\b(?:bearer|basic)\s+([A-Za-z0-9._~+/-]{16,}=*)",
        validator: Validator::None,
        strategy: Strategy::Redact,
        secret: true,
    },
    BuiltinDetector {
        name: "password",
        description: "values of password=, secret:, api_key= ... assignments, and SQL PASSWORD '...' literals",
        pattern: r#"(?i-u)\b(?:password|passwd|pwd|secret|client_secret|api[_-]?key|access[_-]?token|auth[_-]?token)"?\s*(?:[=:]\s*(?:'((?:[^']|'')*)'|"([^"]*)"|([^\s,;&'"}]+))|\s+'((?:[^']|'')*)')"#,
        validator: Validator::None,
        strategy: Strategy::Redact,
        secret: true,
    },
    BuiltinDetector {
        name: "card",
        description: "payment card numbers, 13-19 digits in groups separated by spaces, dashes or dots (Luhn and issuer checked)",
        // A run of digit groups holding at least 13 digits; the validator
        // finds the cards in it (see `validate::card_windows`), so a run
        // with no room for a card never reaches it.
        pattern: r"(?-u)\b\d(?:[ .-]{0,3}\d){12,}\b",
        validator: Validator::Card,
        strategy: Strategy::Partial(4),
        secret: false,
    },
    BuiltinDetector {
        name: "iban",
        description: "international bank account numbers (country length and mod-97 checked)",
        pattern: r"(?-u)\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b",
        validator: Validator::Iban,
        strategy: Strategy::Partial(4),
        secret: false,
    },
    BuiltinDetector {
        name: "ssn",
        description: "US social security numbers written 123-45-6789, 123 45 6789 or 123.45.6789 (invalid areas and groups excluded)",
        pattern: r"(?-u)\b\d{3}[- .]\d{2}[- .]\d{4}\b",
        validator: Validator::Ssn,
        strategy: Strategy::Partial(4),
        secret: false,
    },
    BuiltinDetector {
        name: "email",
        description: "email addresses",
        pattern: r"(?-u)[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}\b",
        validator: Validator::None,
        strategy: Strategy::Redact,
        secret: false,
    },
    BuiltinDetector {
        name: "phone",
        description: "phone numbers: E.164 (+44 20 7946 0958), NANP ((415) 555-0123), trunk-0 national (030 1234 5678, 01 23 45 67 89)",
        pattern: r"(?-u)\+[1-9]\d{0,2}(?:[ .-]?\(?\d{1,4}\)?){2,5}\b|(?:\(\d{3}\) ?|\b\d{3}[ .-])\d{3}[ .-]\d{4}\b|\b0\d{2,4}[ -]\d{3,4}[ -]?\d{3,4}\b|\b0[1-9](?:[ .-]\d{2}){4}\b",
        validator: Validator::Phone,
        strategy: Strategy::Redact,
        secret: false,
    },
    BuiltinDetector {
        name: "ipv4",
        description: "IPv4 addresses (not inside longer dotted numbers)",
        pattern: r"(?-u)\b(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\b",
        validator: Validator::Ipv4,
        strategy: Strategy::Redact,
        secret: false,
    },
    BuiltinDetector {
        name: "ipv6",
        description: "IPv6 addresses (full eight groups, or compressed with ::)",
        pattern: r"(?i-u)(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}|(?:[0-9a-f]{1,4}:){0,6}[0-9a-f]{0,4}::(?:[0-9a-f]{1,4}:){0,5}(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9a-f]{0,4})",
        validator: Validator::Ipv6,
        strategy: Strategy::Redact,
        secret: false,
    },
];

/// Names that stand for several detectors in the configuration.
pub fn group(name: &str) -> Option<Vec<&'static str>> {
    match name {
        "secrets" => Some(
            BUILTIN
                .iter()
                .filter(|d| d.secret)
                .map(|d| d.name)
                .collect(),
        ),
        "ip" => Some(vec!["ipv4", "ipv6"]),
        "pii" => Some(
            BUILTIN
                .iter()
                .filter(|d| !d.secret)
                .map(|d| d.name)
                .collect(),
        ),
        "all" => Some(BUILTIN.iter().map(|d| d.name).collect()),
        _ => None,
    }
}

/// A built-in detector by name.
pub fn builtin(name: &str) -> Option<&'static BuiltinDetector> {
    BUILTIN.iter().find(|d| d.name == name)
}
