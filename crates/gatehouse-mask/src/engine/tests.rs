//! The engine over escaped text, JSON, and inputs built to make it slow.

use super::*;
use crate::{work, BUILTIN};
use proptest::prelude::*;

fn engine() -> MaskingEngine {
    let detectors = BUILTIN
        .iter()
        .map(|d| DetectorSpec::builtin(d, None))
        .collect();
    MaskingEngine::new(detectors, Vec::new(), HashKey::new([1; 32])).unwrap()
}

fn mask(e: &MaskingEngine, value: &str, kind: TextKind) -> (Masked, String) {
    let mut out = Vec::new();
    let m = e.mask_text(
        value.as_bytes(),
        kind,
        &mut out,
        &mut Scratch::default(),
        &mut e.tally(),
    );
    (m, String::from_utf8(out).unwrap())
}

/// The work to mask `n` copies of `unit` (as one JSON string for `Json`).
fn work_for(e: &MaskingEngine, unit: &str, n: usize, kind: TextKind) -> u64 {
    let mut value = unit.repeat(n);
    if kind == TextKind::Json {
        value = format!("\"{value}\"");
    }
    let mut out = Vec::new();
    work::take();
    let m = e.mask_text(
        value.as_bytes(),
        kind,
        &mut out,
        &mut Scratch::default(),
        &mut e.tally(),
    );
    assert_ne!(m, Masked::Clean, "{unit:?} has hits");
    work::take()
}

/// Doubling the input doubles the work, for every kind of value, also with a
/// hit every few bytes (the review's case: `to_jsonb(repeat('a@b.co ',
/// 80000))` took 16.6 s of CPU when each hit rescanned the value from its
/// start). The count is of bytes walked, so it does not depend on timing.
#[test]
fn work_is_linear_in_the_input() {
    let e = engine();
    let cases = [
        ("a@b.co ", TextKind::Json),
        ("a@b.co ", TextKind::Plain),
        ("{\"a\": 4111111111111111}, ", TextKind::Plain),
        (r"\u0034111111111111111 ", TextKind::Json),
        (r"a@b.co\n", TextKind::Json),
        (r"4111\ 1111\ 1111\ 1111 ", TextKind::Escaped),
        (r#"{"\"\\u0034111111111111111\""} "#, TextKind::Plain),
        ("4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 ", TextKind::Plain),
        ("password='x' ", TextKind::Plain),
    ];
    for (unit, kind) in cases {
        let small = work_for(&e, unit, 2_000, kind);
        let large = work_for(&e, unit, 4_000, kind);
        let ratio = large as f64 / small as f64;
        assert!(
            (1.8..2.2).contains(&ratio),
            "{unit:?} as {kind:?}: {small} then {large} bytes walked (x{ratio:.2})"
        );
    }
}

#[test]
fn json_escapes_hide_nothing() {
    let e = engine();
    // The review's case: a card written with a \u escape in a JSON string.
    let (m, out) = mask(&e, r#"{"card": "\u0034111111111111111"}"#, TextKind::Json);
    assert_eq!(m, Masked::Rewritten);
    assert_eq!(out, r#"{"card": "************1111"}"#);
    // Other escapes; the rest of the document stays byte for byte.
    let (_, out) = mask(
        &e,
        r#"{"a\/b": "x", "m": "alice\u0040example\u002ecom", "c": "4111\u00201111 1111 1111"}"#,
        TextKind::Json,
    );
    assert_eq!(
        out,
        r#"{"a\/b": "x", "m": "[masked:email]", "c": "**** **** **** 1111"}"#
    );
    // JSON quoted once more inside an array (json[]) or a record: text, not JSON.
    let (_, out) = mask(&e, r#"{"\"\\u0034111111111111111\""}"#, TextKind::Plain);
    assert_eq!(out, r#"{"\"************1111\""}"#);
    // A mask with characters JSON must escape stays valid JSON.
    let (_, out) = mask(
        &e,
        "{\"k\": \"-----BEGIN PRIVATE KEY-----\\nMIIE\\n-----END PRIVATE KEY-----\"}",
        TextKind::Json,
    );
    assert_eq!(out, r#"{"k": "[masked:private_key]"}"#);
}

#[test]
fn escaped_text_gets_escaped_masks() {
    let e = engine();
    // COPY text with DELIMITER ' ' escapes the spaces of a value.
    let (_, out) = mask(&e, "7 4111\\ 1111\\ 1111\\ 1111 x\n", TextKind::Escaped);
    assert_eq!(out, "7 ****\\ ****\\ ****\\ 1111 x\n");
    // A hit with no escape in it is written as it is.
    let (_, out) = mask(&e, "a@b.co\t4111 1111 1111 1111", TextKind::Escaped);
    assert_eq!(out, "[masked:email]\t**** **** **** 1111");
}

#[test]
fn the_unescaped_view_only_adds_hits() {
    // A custom pattern that matches a backslash still finds it.
    let e = MaskingEngine::new(
        vec![DetectorSpec {
            name: "account".into(),
            pattern: r"CORP\\[a-z]+".into(),
            validator: Validator::None,
            strategy: crate::Strategy::Redact,
        }],
        Vec::new(),
        HashKey::new([1; 32]),
    )
    .unwrap();
    let (_, out) = mask(&e, r"user CORP\nancy \u0034", TextKind::Plain);
    assert_eq!(out, r"user [masked:account] \u0034");
    // A pattern matching inside an escape replaces the whole escape.
    let e = MaskingEngine::new(
        vec![DetectorSpec {
            name: "code".into(),
            pattern: r"u00[0-9]{2}x".into(),
            validator: Validator::None,
            strategy: crate::Strategy::Redact,
        }],
        Vec::new(),
        HashKey::new([1; 32]),
    )
    .unwrap();
    let (_, out) = mask(&e, r#"["a\u0034x"]"#, TextKind::Json);
    assert_eq!(out, r#"["a[masked:code]"]"#);
}

fn hide(card: &str, escape: &[bool]) -> String {
    card.chars()
        .zip(escape.iter().cycle())
        .map(|(c, &e)| {
            if e {
                format!("\\u{:04x}", c as u32)
            } else {
                c.to_string()
            }
        })
        .collect()
}

proptest! {
    /// Any bytes, any kind: masking never panics, and masks twice to the same.
    #[test]
    fn never_panics(
        v in proptest::collection::vec(prop_oneof![
            Just(b'\\'), Just(b'"'), Just(b'u'), Just(b'4'), Just(b'1'), Just(b' '),
            Just(b'@'), Just(b'{'), Just(b':'), any::<u8>()], 0..80),
        kind in prop_oneof![Just(TextKind::Plain), Just(TextKind::Json), Just(TextKind::Escaped)],
    ) {
        let e = engine();
        let mut out = Vec::new();
        e.mask_text(&v, kind, &mut out, &mut Scratch::default(), &mut e.tally());
    }

    /// A card written with any mix of `\u` escapes in a JSON document never
    /// comes out, and the document stays valid JSON.
    #[test]
    fn escaped_cards_in_json_are_masked(
        escape in proptest::collection::vec(any::<bool>(), 1..20),
        before in "[a-z \\\\\"]{0,6}",
        after in "[a-z \\\\\"]{0,6}",
        key in "[a-z]{1,4}",
    ) {
        let e = engine();
        // A JSON string's inside, escaped as JSON escapes it.
        let inside = |s: &str| {
            let quoted = serde_json::to_string(s).unwrap();
            quoted[1..quoted.len() - 1].to_string()
        };
        let card = hide("4111111111111111", &escape);
        let doc = format!(
            "{{\"{key}\": [\"{}\", \"{} {card} {}\", 7]}}",
            inside(&before),
            inside(&before),
            inside(&after),
        );
        prop_assume!(serde_json::from_str::<serde_json::Value>(&doc).is_ok());
        let (m, out) = mask(&e, &doc, TextKind::Json);
        prop_assert_eq!(m, Masked::Rewritten);
        let parsed: serde_json::Value = serde_json::from_str(&out)
            .map_err(|err| TestCaseError::fail(format!("{out}: {err}")))?;
        prop_assert!(!parsed.to_string().contains("4111111111111111"), "{}", out);
        prop_assert!(out.contains("************1111"), "{}", out);
    }
}
