//! The session's search path as the gateway follows it: where an
//! unqualified table name may resolve.

use gatehouse_sql::SettingValue;

/// The session's temporary schema, as a path names it.
const TEMPORARY: &str = "pg_temp";

/// Where unqualified table names may resolve in a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum SearchPath {
    /// Any of these schemas (the union of every search path the session had:
    /// a change may be rolled back, so the path never shrinks).
    Known(Vec<String>),
    /// Set to something the gateway could not read: unqualified names are refused.
    Unknown,
}

impl SearchPath {
    /// The path once `change` (of `search_path`) is made (`RESET` returns to
    /// the login path, which it holds from the start); `user` is what `$user`
    /// means.
    pub(crate) fn changed(&self, change: &SettingValue, user: &str) -> SearchPath {
        let SearchPath::Known(now) = self else {
            return SearchPath::Unknown;
        };
        let added: Vec<String> = match change {
            // RESET: the login path, which is in `now` from the start.
            SettingValue::Default => Vec::new(),
            SettingValue::Literal(v) => match split_search_path(v) {
                Some(list) => list,
                None => return SearchPath::Unknown,
            },
            SettingValue::List(items) => items.clone(),
            SettingValue::Unknown => return SearchPath::Unknown,
        };
        let mut all = now.clone();
        for schema in added {
            let schema = if schema == "$user" {
                user.to_string()
            } else {
                schema
            };
            if !all.contains(&schema) {
                all.push(schema);
            }
        }
        SearchPath::Known(all)
    }
}

impl SearchPath {
    /// The path once the session has a temporary schema (`pg_temp`).
    pub(crate) fn with_temporary(&self) -> SearchPath {
        self.changed(&SettingValue::List(vec![TEMPORARY.into()]), "")
    }

    /// The path once the session's role becomes `role` (`SET ROLE`,
    /// `SET SESSION AUTHORIZATION`): `$user` may now name that role's schema.
    pub(crate) fn changed_user(&self, role: &SettingValue) -> SearchPath {
        match role {
            SettingValue::Default => self.clone(),
            SettingValue::Literal(name) => {
                self.changed(&SettingValue::List(vec![name.clone()]), "")
            }
            SettingValue::List(_) | SettingValue::Unknown => SearchPath::Unknown,
        }
    }
}

/// A `search_path` value as the server reads it: names separated by commas,
/// double-quoted ones as written, others lower-cased. `None` when malformed.
pub(super) fn split_search_path(v: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for part in v.split(',') {
        let part = part.trim();
        if part.is_empty() {
            if v.trim().is_empty() {
                return Some(out);
            }
            return None;
        }
        if let Some(quoted) = part.strip_prefix('"') {
            let inner = quoted.strip_suffix('"')?;
            if inner.contains(',') {
                return None;
            }
            out.push(inner.replace("\"\"", "\""));
        } else {
            out.push(part.to_ascii_lowercase());
        }
    }
    Some(out)
}

#[cfg(test)]
mod search_path_tests {
    use super::*;

    #[test]
    fn a_search_path_only_grows_and_unreadable_values_make_it_unknown() {
        let p = SearchPath::Known(vec!["public".into()]);
        let p = p.changed(
            &SettingValue::Literal("Secret, \"Mixed\", $user".into()),
            "app",
        );
        assert_eq!(
            p,
            SearchPath::Known(vec![
                "public".into(),
                "secret".into(),
                "Mixed".into(),
                "app".into()
            ])
        );
        assert_eq!(p.changed(&SettingValue::Default, "app"), p);
        assert_eq!(
            p.changed(&SettingValue::List(vec!["x".into()]), "app"),
            SearchPath::Known(vec![
                "public".into(),
                "secret".into(),
                "Mixed".into(),
                "app".into(),
                "x".into()
            ])
        );
        assert_eq!(
            p.changed(&SettingValue::Unknown, "app"),
            SearchPath::Unknown
        );
        assert_eq!(
            p.changed(&SettingValue::Literal("\"a,b\"".into()), "app"),
            SearchPath::Unknown
        );
    }
}
