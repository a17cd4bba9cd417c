//! The settings under which the gateway reads statements, pinned.
//!
//! The gateway must decide exactly what the server will execute. Two
//! settings change how the server reads the bytes of a statement:
//! `client_encoding` (in SJIS or BIG5 a byte that is a backslash or a quote
//! in UTF-8 can be the second half of a character) and
//! `standard_conforming_strings` (whether a backslash escapes in `'…'`).
//! Rather than follow their changes (which the gateway learns from the
//! server only after the statements behind the change were decided), the
//! gateway pins them: every backend session starts with `UTF8` and `on`, a
//! client may ask for nothing else (at startup, by `SET` or `set_config`),
//! and a change made behind the gateway's back (by code inside a function)
//! ends the session.
//!
//! Other startup settings are decided by the policy as the `SET` statement
//! they amount to, so `options=-c search_path=…` is exactly as allowed as
//! `SET search_path = …`.

use gatehouse_sql::{SettingChange, SettingValue};

/// `client_encoding`.
pub(crate) const CLIENT_ENCODING: &str = "client_encoding";
/// `standard_conforming_strings`.
pub(crate) const STANDARD_CONFORMING_STRINGS: &str = "standard_conforming_strings";

/// What every backend session is started with, whatever the client asked.
pub(crate) const PINNED: [(&str, &str); 2] = [
    (CLIENT_ENCODING, "UTF8"),
    (STANDARD_CONFORMING_STRINGS, "on"),
];

/// Startup settings that change neither what a statement means nor what it
/// may touch (drivers send them routinely): passed on without a decision.
const HARMLESS: &[&str] = &[
    "application_name",
    "datestyle",
    "timezone",
    "intervalstyle",
    "extra_float_digits",
    "client_min_messages",
    "bytea_output",
    "statement_timeout",
    "lock_timeout",
    "idle_in_transaction_session_timeout",
    "idle_session_timeout",
];

/// An encoding name the way PostgreSQL compares them: letters and digits, lower case.
fn encoding_key(v: &str) -> String {
    v.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn is_utf8(v: &str) -> bool {
    matches!(encoding_key(v).as_str(), "utf8" | "unicode")
}

/// An encoding the server reads the gateway's UTF-8 bytes in unchanged:
/// UTF-8 itself, or `SQL_ASCII` (no conversion; validated as the database's
/// encoding, which is ASCII-safe).
fn reads_as_utf8(v: &str) -> bool {
    is_utf8(v) || encoding_key(v) == "sqlascii"
}

/// PostgreSQL's boolean reading (`on`, `true`, `yes`, `1` and unique prefixes).
fn is_true(v: &str) -> bool {
    let v = v.trim().to_ascii_lowercase();
    if v.is_empty() {
        return false;
    }
    v == "on" || v == "1" || "true".starts_with(&v) || "yes".starts_with(&v)
}

/// Why a statement's change of a setting is refused; `None` when allowed.
pub(crate) fn refused_change(change: &SettingChange) -> Option<String> {
    let Some(name) = change.name.as_deref() else {
        return Some(
            "set_config with a setting name computed at run time: the gateway cannot tell which \
             setting it changes"
                .into(),
        );
    };
    let value = match &change.value {
        // Back to what the session started with, which the gateway pinned.
        SettingValue::Default => return None,
        SettingValue::Literal(v) => Some(v.as_str()),
        SettingValue::List(_) | SettingValue::Unknown => None,
    };
    match name {
        CLIENT_ENCODING if !value.is_some_and(reads_as_utf8) => Some(format!(
            "client_encoding is pinned to UTF8 through the gateway (it reads statements as UTF-8, and \
             must read them as the server does); {} refused",
            shown(value)
        )),
        STANDARD_CONFORMING_STRINGS if !value.is_some_and(is_true) => Some(format!(
            "standard_conforming_strings is pinned to on through the gateway (it decides how \
             backslashes in literals are read, and the gateway must read them as the server does); \
             {} refused",
            shown(value)
        )),
        _ => None,
    }
}

fn shown(value: Option<&str>) -> String {
    match value {
        Some(v) => format!("{:?}", v.chars().take(64).collect::<String>()),
        None => "a value computed at run time".into(),
    }
}

/// Why `sql` could be read differently by the server were a pinned setting
/// changed behind the gateway's back without a report (code inside a
/// function may set and reset one within a batch, and the server reports
/// only the value at the end): a backslash right after a non-ASCII byte (in
/// SJIS, BIG5, GBK, UHC, GB18030 or JOHAB it can be the second half of a
/// character). `None` for almost every statement: one without a backslash.
pub(crate) fn encoding_sensitive(sql: &str) -> Option<String> {
    let b = sql.as_bytes();
    let mut from = 0;
    while let Some(i) = b[from..].iter().position(|&c| c == b'\\') {
        let at = from + i;
        if at > 0 && b[at - 1] >= 0x80 {
            return Some(
                "a backslash right after a non-ASCII character would be read differently in the \
                 multi-byte encodings the gateway refuses; put a space or another ASCII character \
                 between them, or pass the value as a parameter"
                    .into(),
            );
        }
        from = at + 1;
    }
    None
}

/// Why a value the backend reports (ParameterStatus) breaks a pin.
pub(crate) fn reported_break(name: &str, value: &str) -> Option<String> {
    let broken = match name {
        CLIENT_ENCODING => !reads_as_utf8(value),
        STANDARD_CONFORMING_STRINGS => !is_true(value),
        _ => false,
    };
    broken.then(|| {
        format!(
            "{name} became {value:?} through code the gateway cannot see into (a function); \
             statements after it could no longer be read the way the server reads them"
        )
    })
}

/// A client's startup parameters, sorted out.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct StartupSettings {
    /// Passed to the backend as they are (pins included).
    pub(crate) forwarded: Vec<(String, String)>,
    /// Passed on only if the policy allows the equivalent `SET`.
    pub(crate) to_decide: Vec<(String, String)>,
}

impl StartupSettings {
    /// Sorts a client's startup parameters (`user`, `database`, `replication`
    /// and `_pq_.*` are the listener's and skipped here). `options` is
    /// unpacked into the settings it holds (`-c name=value`, `--name=value`);
    /// anything else in it is refused, and it never reaches the backend whole.
    pub(crate) fn sort(params: &[(String, String)]) -> Result<Self, String> {
        let mut settings = Vec::new();
        for (k, v) in params {
            // The listener's own keys, exactly as the protocol spells them.
            match k.as_str() {
                "user" | "database" | "replication" => continue,
                _ if k.starts_with("_pq_.") => continue,
                "options" => settings.extend(split_options(v)?),
                _ => settings.push((k.to_ascii_lowercase(), v.clone())),
            }
        }
        let mut out = StartupSettings::default();
        for (name, value) in settings {
            // Whatever reaches the backend as a startup key must be a setting:
            // never the login's own keys (in any case, or from `options`),
            // and only a name a setting can have.
            if matches!(
                name.as_str(),
                "user" | "database" | "replication" | "options"
            ) || name.starts_with("_pq_")
                || !is_setting_name(&name)
            {
                return Err(format!(
                    "startup parameter {:?} is not a setting the gateway passes on (the gateway \
                     chooses the database, user and options of the backend login itself)",
                    name.chars().take(64).collect::<String>()
                ));
            }
            match name.as_str() {
                // libpq sends SQL_ASCII for a C locale; the server reads such
                // bytes as UTF-8 too once the session is pinned.
                CLIENT_ENCODING if reads_as_utf8(&value) => {}
                CLIENT_ENCODING => {
                    return Err(format!(
                        "client_encoding {value:?} is not supported through the gateway: it reads \
                         statements as UTF-8 and pins every session to UTF8; set client_encoding to \
                         UTF8 (PGCLIENTENCODING=UTF8)"
                    ))
                }
                STANDARD_CONFORMING_STRINGS if is_true(&value) => {}
                STANDARD_CONFORMING_STRINGS => {
                    return Err(format!(
                        "standard_conforming_strings {value:?} is not supported through the gateway: \
                         it is pinned to on"
                    ))
                }
                n if HARMLESS.contains(&n) => out.forwarded.push((name, value)),
                _ => out.to_decide.push((name, value)),
            }
        }
        for (name, value) in PINNED {
            out.forwarded.push((name.to_string(), value.to_string()));
        }
        Ok(out)
    }
}

/// A setting's name: letters, digits, `_`, `$` and `.` (custom settings are
/// `prefix.name`), starting with a letter or `_`, at most 63 bytes.
fn is_setting_name(name: &str) -> bool {
    name.len() < 64
        && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '$' | '.'))
}

/// The `SET` statement a startup setting amounts to.
pub(crate) fn as_set_statement(name: &str, value: &str) -> String {
    format!(
        "SET \"{}\" = '{}'",
        name.replace('"', "\"\""),
        value.replace('\'', "''")
    )
}

/// The settings in a startup `options` value, split as the server splits it
/// (whitespace separates, a backslash keeps the next character).
fn split_options(options: &str) -> Result<Vec<(String, String)>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = options.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                in_word = true;
                if let Some(n) = chars.next() {
                    word.push(n);
                }
            }
            c if c.is_ascii_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    let mut out = Vec::new();
    let mut it = words.into_iter();
    while let Some(w) = it.next() {
        let setting = if w == "-c" {
            it.next()
                .ok_or_else(|| "startup option -c without a setting".to_string())?
        } else if let Some(s) = w.strip_prefix("--").or_else(|| w.strip_prefix("-c")) {
            s.to_string()
        } else {
            return Err(format!(
                "startup option {:?} is not supported through the gateway: only settings \
                 (-c name=value or --name=value) are",
                w.chars().take(64).collect::<String>()
            ));
        };
        let Some((name, value)) = setting.split_once('=') else {
            return Err(format!(
                "startup option -c {:?} has no value (expected name=value)",
                setting.chars().take(64).collect::<String>()
            ));
        };
        // The server reads dashes in a setting's name as underscores.
        out.push((
            name.replace('-', "_").to_ascii_lowercase(),
            value.to_string(),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Startup parameters and statement texts come from the client:
        /// any of them is sorted or refused, never a panic.
        #[test]
        fn any_startup_parameters_are_sorted_or_refused(
            key in "[a-zA-Z_ .\\-]{0,12}",
            value in "\\PC{0,40}",
        ) {
            let _ = StartupSettings::sort(&[(key.clone(), value.clone())]);
            let _ = StartupSettings::sort(&[("options".into(), value.clone())]);
            let _ = encoding_sensitive(&value);
            let _ = crate::gate::search_path::split_search_path(&value);
        }
    }

    fn params(kv: &[(&str, &str)]) -> Vec<(String, String)> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn options_are_unpacked_into_settings_to_decide() {
        let s = StartupSettings::sort(&params(&[
            ("user", "x"),
            (
                "options",
                "-c search_path=secret --statement-timeout=5s -csearch_path=a\\ b",
            ),
            ("application_name", "psql"),
        ]))
        .unwrap();
        assert_eq!(
            s.to_decide,
            params(&[("search_path", "secret"), ("search_path", "a b")])
        );
        assert!(s
            .forwarded
            .contains(&("statement_timeout".into(), "5s".into())));
        assert!(s
            .forwarded
            .contains(&("application_name".into(), "psql".into())));
        assert!(s
            .forwarded
            .contains(&("client_encoding".into(), "UTF8".into())));
        assert!(s
            .forwarded
            .contains(&("standard_conforming_strings".into(), "on".into())));
        assert!(!s
            .forwarded
            .iter()
            .any(|(k, _)| k == "options" || k == "user"));
    }

    #[test]
    fn other_options_and_encodings_are_refused() {
        for bad in ["-d 5", "-c", "-c search_path", "-B 100"] {
            assert!(
                StartupSettings::sort(&params(&[("options", bad)])).is_err(),
                "{bad}"
            );
        }
        for smuggled in [
            "-c database=postgres",
            "-c user=postgres",
            "-c options=-c\\ role=x",
            "--replication=true",
            "-c _pq_.x=1",
            "-c bad\"name=1",
        ] {
            assert!(
                StartupSettings::sort(&params(&[("options", smuggled)])).is_err(),
                "{smuggled}"
            );
        }
        for key in ["Database", "USER", "REPLICATION", "Options"] {
            assert!(
                StartupSettings::sort(&params(&[(key, "x")])).is_err(),
                "{key}"
            );
        }
        for enc in ["SJIS", "big5", "LATIN1", "GBK"] {
            assert!(StartupSettings::sort(&params(&[("client_encoding", enc)])).is_err());
            assert!(StartupSettings::sort(&params(&[(
                "options",
                &format!("-c client_encoding={enc}")
            )]))
            .is_err());
        }
        assert!(StartupSettings::sort(&params(&[("standard_conforming_strings", "off")])).is_err());
        for ok in ["UTF8", "utf-8", "Unicode", "SQL_ASCII"] {
            assert!(StartupSettings::sort(&params(&[("client_encoding", ok)])).is_ok());
        }
    }

    #[test]
    fn pinned_settings_change_only_to_their_pinned_value() {
        let change = |name: Option<&str>, value: SettingValue| SettingChange {
            name: name.map(str::to_string),
            value,
        };
        let lit = |v: &str| SettingValue::Literal(v.into());
        assert!(refused_change(&change(Some("client_encoding"), lit("SJIS"))).is_some());
        assert!(refused_change(&change(Some("client_encoding"), SettingValue::Unknown)).is_some());
        assert!(refused_change(&change(Some("client_encoding"), lit("utf-8"))).is_none());
        assert!(refused_change(&change(Some("client_encoding"), SettingValue::Default)).is_none());
        assert!(refused_change(&change(Some("standard_conforming_strings"), lit("off"))).is_some());
        assert!(refused_change(&change(Some("standard_conforming_strings"), lit("0"))).is_some());
        assert!(refused_change(&change(Some("standard_conforming_strings"), lit("on"))).is_none());
        assert!(refused_change(&change(None, lit("x"))).is_some());
        assert!(refused_change(&change(Some("work_mem"), lit("64MB"))).is_none());
        assert!(reported_break("client_encoding", "SJIS").is_some());
        assert!(reported_break("standard_conforming_strings", "off").is_some());
        assert!(reported_break("client_encoding", "UTF8").is_none());
        assert!(reported_break("TimeZone", "UTC").is_none());
    }

    #[test]
    fn a_startup_setting_becomes_the_set_statement_it_amounts_to() {
        assert_eq!(
            as_set_statement("search_path", "a', b"),
            "SET \"search_path\" = 'a'', b'"
        );
    }
}
