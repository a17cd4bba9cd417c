//! Values in error and notice texts, redacted under column rules.
//!
//! PostgreSQL quotes the value it could not take (`invalid input syntax for
//! type integer: "QQ123456C"`), shows a key's value (`Key (id)=(7) already
//! exists.`), a whole failing row (`Failing row contains (…)`) or a piece of
//! JSON (`JSON data, line 1: …`). Under column rules any of these can be a
//! ruled column's value that no detector recognises (a national id is just
//! letters and digits), so they are redacted; names the server quotes
//! (`relation "orders" does not exist`) are kept, since they follow a word
//! rather than a colon.

/// What stands in for a redacted value.
const REDACTED: &str = "[redacted: column masking rules apply]";

/// `text` of error field `field` with the values it may quote redacted;
/// `None` when it holds none.
pub(crate) fn redact_values(field: u8, text: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(text).ok()?;
    let redacted = match field {
        // Message: a quoted value after a colon.
        b'M' => after_colon_quotes(text),
        // Detail and context: keys' values, failing rows, JSON pieces, and
        // quoted values after a colon.
        b'D' | b'W' => {
            if text.starts_with("Failing row contains") {
                Some(format!("Failing row contains ({REDACTED})."))
            } else if let Some(i) = text.find("JSON data, line ") {
                let rest = &text[i..];
                let cut = rest.find(": ").map_or(rest.len(), |c| c + 2);
                Some(format!("{}{REDACTED}", &text[..i + cut]))
            } else {
                let keys = key_values(text);
                let t = keys.as_deref().unwrap_or(text);
                after_colon_quotes(t).or(keys)
            }
        }
        _ => None,
    }?;
    Some(redacted.into_bytes())
}

/// `…: "value"` → `…: "[redacted]"`, every occurrence.
fn after_colon_quotes(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut changed = false;
    while let Some(i) = rest.find(": \"") {
        let start = i + 3;
        // The closing quote: the last one before the end of the sentence
        // (the value may itself contain quotes, doubled or not).
        let Some(len) = rest[start..].rfind('"') else {
            break;
        };
        out.push_str(&rest[..start]);
        out.push_str(REDACTED);
        out.push('"');
        rest = &rest[start + len + 1..];
        changed = true;
    }
    out.push_str(rest);
    changed.then_some(out)
}

/// `Key (a, b)=(1, x)` → `Key (a, b)=([redacted])`.
fn key_values(text: &str) -> Option<String> {
    let i = text.find(")=(")?;
    let start = i + 3;
    let end = text[start..].rfind(')').map_or(text.len(), |e| start + e);
    Some(format!("{}{REDACTED}{}", &text[..start], &text[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Error texts come from the backend: any is redacted or left, never a panic.
        #[test]
        fn any_error_text_is_redacted_or_left(
            field in prop::sample::select(vec![b'M', b'D', b'W', b'H']),
            text in "(\\PC|: \"|\\)=\\(|Failing row contains|JSON data, line 1: ){0,20}",
        ) {
            let _ = redact_values(field, text.as_bytes());
        }

        #[test]
        fn any_bytes_are_redacted_or_left(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = redact_values(b'M', &bytes);
            let _ = redact_values(b'D', &bytes);
        }
    }

    fn r(field: u8, text: &str) -> Option<String> {
        redact_values(field, text.as_bytes()).map(|v| String::from_utf8(v).unwrap())
    }

    #[test]
    fn values_are_redacted_and_names_kept() {
        assert_eq!(
            r(b'M', "invalid input syntax for type integer: \"QQ123456C\"").as_deref(),
            Some(
                "invalid input syntax for type integer: \"[redacted: column masking rules apply]\""
            )
        );
        assert_eq!(r(b'M', "relation \"orders\" does not exist"), None);
        assert_eq!(
            r(b'D', "Key (national_id)=(QQ123456C) already exists.").as_deref(),
            Some("Key (national_id)=([redacted: column masking rules apply]) already exists.")
        );
        assert_eq!(
            r(b'D', "Failing row contains (1, QQ123456C, null).").as_deref(),
            Some("Failing row contains ([redacted: column masking rules apply]).")
        );
        assert_eq!(
            r(b'W', "JSON data, line 1: {\"id\": QQ12...").as_deref(),
            Some("JSON data, line 1: [redacted: column masking rules apply]")
        );
        assert_eq!(r(b'H', "hint: \"x\""), None);
    }
}
