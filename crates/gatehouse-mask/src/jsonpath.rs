//! JSON paths for field rules: which values of a JSON document a rule masks
//! whatever their content (`$.customers[*].ssn`, `$..card`).
//!
//! The subset every JSONPath dialect agrees on: `$` the root, `.name` and
//! `['name']` a member, `[N]` an element, `[*]` and `.*` any member or
//! element, `..name` and `..*` at any depth below. No filters or slices:
//! a rule must say plainly what it covers.

use crate::MaskError;

/// One step of a document path: a member name or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathStep {
    /// An object member.
    Key(String),
    /// An array element.
    Index(u64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Selector {
    Name(String),
    Index(u64),
    Any,
}

impl Selector {
    fn matches(&self, step: &PathStep) -> bool {
        match (self, step) {
            (Selector::Any, _) => true,
            (Selector::Name(n), PathStep::Key(k)) => n == k,
            (Selector::Index(i), PathStep::Index(j)) => i == j,
            _ => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Segment {
    /// `..`: the selector may match at any depth below the previous segment.
    descendant: bool,
    selector: Selector,
}

/// A parsed JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath {
    segments: Vec<Segment>,
}

impl JsonPath {
    /// Parses a path; a mistake is an error naming the path and what is wrong.
    pub fn parse(text: &str) -> Result<Self, MaskError> {
        let bad = |why: &str| MaskError::JsonPath(text.to_string(), why.to_string());
        let b = text.as_bytes();
        if b.first() != Some(&b'$') {
            return Err(bad("a JSON path starts with $"));
        }
        let mut i = 1;
        let mut segments = Vec::new();
        while i < b.len() {
            let descendant = b[i..].starts_with(b"..");
            match b[i] {
                b'.' => {
                    i += if descendant { 2 } else { 1 };
                    if i < b.len() && b[i] == b'[' {
                        if !descendant {
                            return Err(bad("write .[ as ["));
                        }
                        let (sel, next) = bracket(text, i).map_err(|w| bad(&w))?;
                        segments.push(Segment {
                            descendant,
                            selector: sel,
                        });
                        i = next;
                        continue;
                    }
                    let start = i;
                    while i < b.len() && !matches!(b[i], b'.' | b'[') {
                        i += 1;
                    }
                    let name = &text[start..i];
                    let selector = match name {
                        "" => return Err(bad("a member name is missing after a dot")),
                        "*" => Selector::Any,
                        n if n.contains([']', '\'', '"', ' ']) => {
                            return Err(bad("quote member names with spaces or quotes: ['name']"))
                        }
                        n => Selector::Name(n.to_string()),
                    };
                    segments.push(Segment {
                        descendant,
                        selector,
                    });
                }
                b'[' => {
                    let (selector, next) = bracket(text, i).map_err(|w| bad(&w))?;
                    segments.push(Segment {
                        descendant: false,
                        selector,
                    });
                    i = next;
                }
                _ => return Err(bad("expected . or [ after a segment")),
            }
        }
        if segments.is_empty() {
            return Err(bad("$ alone would mask the whole document; name a field"));
        }
        Ok(Self { segments })
    }

    /// Whether a value at `path` (from the root) is covered.
    pub fn matches(&self, path: &[PathStep]) -> bool {
        matches_from(&self.segments, path)
    }
}

/// Runs the segments as an automaton over the path, one step at a time:
/// `states[i]` says the first `i` segments matched the steps so far.
/// Linear in the path's depth times the segments (a recursive search was
/// exponential in `..` segments and quadratic in depth).
fn matches_from(segments: &[Segment], path: &[PathStep]) -> bool {
    let n = segments.len();
    let mut states = vec![false; n + 1];
    let mut next = vec![false; n + 1];
    states[0] = true;
    for step in path {
        next.iter_mut().for_each(|s| *s = false);
        for i in 0..n {
            if !states[i] {
                continue;
            }
            let seg = &segments[i];
            if seg.descendant {
                // `..` may skip this step and match further down.
                next[i] = true;
            }
            if seg.selector.matches(step) {
                next[i + 1] = true;
            }
        }
        std::mem::swap(&mut states, &mut next);
    }
    states[n]
}

/// Reads `[…]` at `i`: `[*]`, `[N]`, `['name']` or `["name"]`.
fn bracket(text: &str, i: usize) -> Result<(Selector, usize), String> {
    let rest = &text[i + 1..];
    let close = rest.find(']').ok_or("a [ is not closed")?;
    let inner = &rest[..close];
    let selector = if inner == "*" {
        Selector::Any
    } else if let Some(q) = inner
        .strip_prefix('\'')
        .and_then(|s| s.strip_suffix('\''))
        .or_else(|| inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
    {
        if q.is_empty() {
            return Err("an empty member name".into());
        }
        Selector::Name(q.to_string())
    } else if let Ok(n) = inner.parse::<u64>() {
        Selector::Index(n)
    } else {
        return Err(format!(
            "[{inner}] is not supported: use [*], [N] or ['name'] (no filters or slices)"
        ));
    };
    Ok((selector, i + 1 + close + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(steps: &[&str]) -> Vec<PathStep> {
        steps
            .iter()
            .map(|s| match s.parse::<u64>() {
                Ok(n) => PathStep::Index(n),
                Err(_) => PathStep::Key(s.to_string()),
            })
            .collect()
    }

    #[test]
    fn member_and_wildcard_paths_cover_exactly_their_values() {
        let j = JsonPath::parse("$.customers[*].ssn").unwrap();
        assert!(j.matches(&p(&["customers", "0", "ssn"])));
        assert!(j.matches(&p(&["customers", "7", "ssn"])));
        assert!(!j.matches(&p(&["customers", "0", "name"])));
        assert!(!j.matches(&p(&["customers", "0", "ssn", "x"])));
        assert!(!j.matches(&p(&["ssn"])));
        let q = JsonPath::parse("$['a b'][2]").unwrap();
        assert!(q.matches(&p(&["a b", "2"])));
        assert!(!q.matches(&p(&["a b", "1"])));
    }

    #[test]
    fn descendant_paths_cover_a_name_at_any_depth() {
        let j = JsonPath::parse("$..card").unwrap();
        assert!(j.matches(&p(&["card"])));
        assert!(j.matches(&p(&["a", "0", "b", "card"])));
        assert!(!j.matches(&p(&["card", "number"])));
        let k = JsonPath::parse("$..payment.card").unwrap();
        assert!(k.matches(&p(&["x", "payment", "card"])));
        assert!(!k.matches(&p(&["payment", "x", "card"])));
        let any = JsonPath::parse("$.data..*").unwrap();
        assert!(any.matches(&p(&["data", "x"])));
        assert!(!any.matches(&p(&["other", "x"])));
    }

    #[test]
    fn many_descendant_segments_on_a_deep_path_match_in_linear_time() {
        let j = JsonPath::parse("$..a..a..a..a..a..b").unwrap();
        let deep: Vec<PathStep> = (0..5000).map(|_| PathStep::Key("a".into())).collect();
        assert!(!j.matches(&deep));
        let mut hit = deep.clone();
        hit.push(PathStep::Key("b".into()));
        assert!(j.matches(&hit));
    }

    #[test]
    fn malformed_paths_are_refused_with_a_reason() {
        for bad in [
            "customers.ssn",
            "$",
            "$.",
            "$[?(@.x)]",
            "$[1:3]",
            "$[",
            "$.a b",
            "$x",
        ] {
            let e = JsonPath::parse(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{bad}: {e}");
        }
    }
}
