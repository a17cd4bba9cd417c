//! `Entry::decode_head` (what verification reads: a one-pass canonical
//! check and the head, no payload built) accepts exactly what
//! `Entry::decode` (parse, re-encode, compare) accepts, and reads the same
//! head, over valid entries and every kind of small change to them.

use gatehouse_evidence::{merkle, Entry, Event, EventKind};
use proptest::prelude::*;
use serde_json::json;

fn entry(seq: u64, text: &str, n: i64) -> Vec<u8> {
    Entry {
        seq,
        node: "node-a".into(),
        prev: merkle::leaf_hash(text.as_bytes()),
        event: Event {
            kind: EventKind::Statement,
            time: "2026-11-30T10:00:00.000Z".into(),
            payload: json!({"statement": text, "n": n, "tables": ["a", "b"], "nested": {"é": [1, -2, null, true]}}),
        },
    }
    .encode()
    .unwrap()
}

fn same(bytes: &[u8]) -> Result<(), TestCaseError> {
    let full = Entry::decode(bytes);
    let head = Entry::decode_head(bytes);
    prop_assert_eq!(
        full.is_ok(),
        head.is_ok(),
        "{:?}: {:?} vs {:?}",
        String::from_utf8_lossy(bytes),
        full.as_ref().err().map(|e| e.to_string()),
        head.as_ref().err().map(|e| e.to_string())
    );
    if let (Ok(f), Ok(h)) = (full, head) {
        prop_assert_eq!(
            (f.seq, f.prev, f.event.kind, f.event.time),
            (h.seq, h.prev, h.kind, h.time)
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn decode_head_agrees_with_decode(
        seq in any::<u64>(),
        text in "\\PC{0,24}",
        n in any::<i64>(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        change in 0u8..7,
    ) {
        let mut b = entry(seq, &text, n);
        same(&b)?;
        let i = at.index(b.len());
        match change {
            0 => b[i] = byte,
            1 => { b.remove(i); }
            2 => b.insert(i, byte),
            3 => b.insert(i, b' '),
            4 => { let s = String::from_utf8_lossy(&b).replace("\"prev\":\"", "\"prev\":\"A"); b = s.into_bytes(); }
            5 => {
                // prev in upper-case hex: the same hash, not the writer's encoding.
                let t = String::from_utf8_lossy(&b).into_owned();
                let at = t.find("\"prev\":\"").unwrap() + 8;
                let upper = format!("{}{}{}", &t[..at], t[at..at + 64].to_uppercase(), &t[at + 64..]);
                b = upper.into_bytes();
            }
            _ => { let s = String::from_utf8_lossy(&b).to_uppercase(); b = s.into_bytes(); }
        }
        same(&b)?;
    }
}
