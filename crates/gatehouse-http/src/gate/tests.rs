//! The request gate: unit tests.
use super::body_facts;

proptest::proptest! {
    /// Any body under any label is read or refused, never a panic.
    #[test]
    fn arbitrary_bodies_never_panic(
        body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
        ct in proptest::sample::select(vec!["application/json", "text/plain", "application/x-www-form-urlencoded", ""]),
    ) {
        let _ = body_facts(ct, &body);
    }
}

#[test]
fn a_body_that_looks_like_json_is_read_as_json_whatever_its_label() {
    let (names, pairs) = body_facts("text/plain", br#" {"kind":"refund","n":1}"#).unwrap();
    assert_eq!(names, ["kind", "n"]);
    assert_eq!(pairs, ["kind=refund", "n=1"]);
    let bom = b"\xEF\xBB\xBF{\"kind\":\"refund\"}";
    assert_eq!(body_facts("", bom).unwrap().1, ["kind=refund"]);
    let (_, form) = body_facts("application/x-www-form-urlencoded", b"kind=refund&x=%41").unwrap();
    assert_eq!(form, ["kind=refund", "x=A"]);
    assert!(body_facts("text/plain", b"hello").unwrap().0.is_empty());
}

#[test]
fn json_the_gateway_cannot_read_is_refused() {
    for bad in [
        &br#"{"amount":NaN}"#[..],
        br#"{"amount":1e400}"#,
        br#"{"s":"\ud800"}"#,
        b"\xFF\xFE{\x00}\x00",
        br#"{"a":"#,
    ] {
        assert!(body_facts("application/json", bad).is_err(), "{bad:?}");
    }
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    assert!(body_facts("application/json", deep.as_bytes()).is_err());
}
