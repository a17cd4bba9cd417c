//! Streamed JSON masking: the same output whatever the chunking, valid JSON
//! out, field rules by JSON path, and malformed or oversized documents
//! stopped.

use gatehouse_mask::{
    ColumnRule, ColumnTarget, DetectorSpec, HashKey, JsonPath, JsonStream, JsonStreamError,
    MaskingEngine, Scratch, Strategy as Mask, BUILTIN,
};
use proptest::prelude::*;

fn engine(paths: &[(&str, Mask)]) -> MaskingEngine {
    let detectors = BUILTIN
        .iter()
        .map(|d| DetectorSpec::builtin(d, None))
        .collect();
    let rules = paths
        .iter()
        .map(|(p, s)| ColumnRule {
            target: ColumnTarget::JsonPath(JsonPath::parse(p).unwrap()),
            strategy: *s,
            label: p.to_string(),
        })
        .collect();
    MaskingEngine::new(detectors, rules, HashKey::new([7; 32])).unwrap()
}

/// Masks `doc` fed in chunks of `chunk` bytes.
fn mask(e: &MaskingEngine, doc: &[u8], chunk: usize) -> Result<String, JsonStreamError> {
    let mut s = JsonStream::new(1 << 20);
    let (mut out, mut scratch, mut tally) = (Vec::new(), Scratch::default(), e.tally());
    for c in doc.chunks(chunk.max(1)) {
        s.feed(e, c, &mut out, &mut scratch, &mut tally)?;
    }
    s.finish(e, &mut out, &mut scratch, &mut tally)?;
    Ok(String::from_utf8(out).unwrap())
}

const CUSTOMERS: &str = r#"{"customers": [
  {"id": 1, "email": "ada@example.com", "ssn": "123-45-6789", "card": "4111 1111 1111 1111"},
  {"id": 2, "email": "bob@example.org", "ssn": "987-65-4320", "card": 5500000000000004,
   "ada@example.com": true, "nested": {"card": {"number": "x"}}}
], "total": 2, "ok": true, "none": null, "empty": [], "e2": {}}"#;

#[test]
fn detectors_mask_strings_keys_and_numbers_and_the_output_stays_json() {
    let e = engine(&[]);
    let out = mask(&e, CUSTOMERS.as_bytes(), 1 << 20).unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(!out.contains("ada@example.com"), "{out}");
    assert!(!out.contains("4111 1111 1111 1111"), "{out}");
    assert!(!out.contains("5500000000000004"), "{out}");
    assert!(!out.contains("123-45-6789"), "{out}");
    assert_eq!(v["total"], 2);
    assert_eq!(v["customers"][0]["id"], 1);
    assert_eq!(v["ok"], true);
    assert!(v["none"].is_null());
}

#[test]
fn the_output_is_the_same_whatever_the_chunk_size() {
    let e = engine(&[("$..ssn", Mask::Partial(4)), ("$..nested", Mask::Redact)]);
    let whole = mask(&e, CUSTOMERS.as_bytes(), 1 << 20).unwrap();
    for chunk in [1, 2, 3, 5, 7, 16, 64] {
        assert_eq!(
            mask(&e, CUSTOMERS.as_bytes(), chunk).unwrap(),
            whole,
            "{chunk}"
        );
    }
}

#[test]
fn json_path_rules_mask_their_values_whatever_the_content() {
    let e = engine(&[
        ("$.customers[*].id", Mask::Redact),
        ("$..ssn", Mask::Partial(4)),
        ("$..nested", Mask::Redact),
        ("$.total", Mask::Null),
    ]);
    let out = mask(&e, CUSTOMERS.as_bytes(), 3).unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["customers"][0]["id"], "[masked:$.customers[*].id]");
    assert_eq!(v["customers"][1]["id"], "[masked:$.customers[*].id]");
    assert_eq!(v["customers"][0]["ssn"], "***-**-6789");
    assert_eq!(v["customers"][1]["nested"], "[masked:$..nested]");
    assert!(v["total"].is_null());
    // Values no rule covers still go through the detectors.
    assert!(!out.contains("bob@example.org"));
}

#[test]
fn malformed_truncated_and_oversized_documents_are_stopped() {
    let e = engine(&[]);
    for bad in [
        &br#"{"a" 1}"#[..],
        br#"{"a": 1,}"#,
        br#"[1 2]"#,
        br#"{"a": tru}"#,
        br#"[1] x"#,
        br#"]"#,
        br#"{"a": 01}"#,
    ] {
        let r = mask(&e, bad, 2);
        assert!(
            matches!(r, Err(JsonStreamError::Syntax { .. })),
            "{}: {r:?}",
            String::from_utf8_lossy(bad)
        );
    }
    for cut in [&br#"{"a": [1, 2"#[..], br#"{"a": "x"#, br#""#] {
        assert_eq!(mask(&e, cut, 4), Err(JsonStreamError::Truncated));
    }
    let mut s = JsonStream::new(16);
    let (mut out, mut scratch, mut tally) = (Vec::new(), Scratch::default(), e.tally());
    let r = s.feed(
        &e,
        br#"["0123456789abcdefghij"]"#,
        &mut out,
        &mut scratch,
        &mut tally,
    );
    assert_eq!(r, Err(JsonStreamError::ValueTooLarge { limit: 16 }));
}

#[test]
fn a_long_array_streams_in_the_memory_of_one_value() {
    let e = engine(&[("$[*].email", Mask::Redact)]);
    let mut s = JsonStream::new(4096);
    let (mut out, mut scratch, mut tally) = (Vec::new(), Scratch::default(), e.tally());
    s.feed(&e, b"[", &mut out, &mut scratch, &mut tally)
        .unwrap();
    for i in 0..100_000 {
        let item = format!(
            "{}{{\"i\":{i},\"email\":\"user{i}@example.com\"}}",
            if i > 0 { "," } else { "" }
        );
        s.feed(&e, item.as_bytes(), &mut out, &mut scratch, &mut tally)
            .unwrap();
        // Nothing of a finished element is held back.
        assert!(out.ends_with(b"\"[masked:$[*].email]\"}"), "{i}");
        out.clear();
    }
    s.feed(&e, b"]", &mut out, &mut scratch, &mut tally)
        .unwrap();
    s.finish(&e, &mut out, &mut scratch, &mut tally).unwrap();
    assert!(tally.total() >= 100_000);
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        "[a-z0-9@. \\-\"\\\\\u{e9}]{0,20}".prop_map(serde_json::Value::from),
        Just(serde_json::Value::from("4111 1111 1111 1111")),
        Just(serde_json::Value::from("x ada@example.com y")),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::btree_map("[a-z@.]{0,8}", inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn any_document_masks_to_valid_json_the_same_in_any_chunks(
        v in json_value(),
        chunk in 1usize..40,
        pretty in any::<bool>(),
    ) {
        let e = engine(&[("$..a", Mask::Redact), ("$[0]", Mask::Hash)]);
        let doc = if pretty { serde_json::to_string_pretty(&v) } else { serde_json::to_string(&v) }.unwrap();
        let whole = mask(&e, doc.as_bytes(), usize::MAX).unwrap();
        prop_assert!(serde_json::from_str::<serde_json::Value>(&whole).is_ok(), "{}", whole);
        prop_assert_eq!(mask(&e, doc.as_bytes(), chunk).unwrap(), whole);
    }

    #[test]
    fn arbitrary_bytes_never_panic(doc in prop::collection::vec(any::<u8>(), 0..200), chunk in 1usize..20) {
        let e = engine(&[("$..a", Mask::Redact)]);
        let _ = mask(&e, &doc, chunk);
    }
}

#[test]
fn nesting_deeper_than_the_limit_is_stopped_not_followed() {
    let e = engine(&[("$..ssn", Mask::Redact)]);
    let deep = "[".repeat(gatehouse_mask::MAX_DEPTH + 1);
    assert_eq!(
        mask(&e, deep.as_bytes(), 64),
        Err(JsonStreamError::TooDeep(gatehouse_mask::MAX_DEPTH))
    );
    let ok = format!(
        "{}{}",
        "[".repeat(gatehouse_mask::MAX_DEPTH),
        "]".repeat(gatehouse_mask::MAX_DEPTH)
    );
    assert!(mask(&e, ok.as_bytes(), 64).is_ok());
}
