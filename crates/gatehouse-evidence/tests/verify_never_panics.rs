//! `verify` reads what an operator with access to the files could have
//! written: any entries and notes are verified or named, never a panic.

use gatehouse_evidence::{verify, SigningKey, StoredCheckpoint, StoredEntry};
use proptest::prelude::*;

proptest! {
    #[test]
    fn arbitrary_entries_and_notes_are_verified_or_named(
        entries in proptest::collection::vec(
            (any::<i64>(), proptest::collection::vec(any::<u8>(), 0..80)),
            0..8,
        ),
        notes in proptest::collection::vec("\\PC{0,120}", 0..3),
    ) {
        let key = SigningKey::generate("gatehouse.test/props").unwrap();
        let entries: Vec<StoredEntry> = entries
            .into_iter()
            .map(|(position, bytes)| StoredEntry { position, bytes })
            .collect();
        let checkpoints: Vec<StoredCheckpoint> = notes
            .into_iter()
            .map(|note| StoredCheckpoint { source: "store".into(), note })
            .collect();
        let report = verify(&entries, &checkpoints, &key.verifier());
        // Bytes that are not entries of this log are findings, never a clean log.
        prop_assert!(entries.is_empty() || !report.is_clean());
    }

    /// JSON-shaped entries reach the decoder's deeper checks.
    #[test]
    fn json_shaped_entries_are_verified_or_named(
        texts in proptest::collection::vec(r#"\{("[a-z]{1,5}":("[a-z0-9]{0,6}"|[0-9]{1,3}),?){0,6}\}"#, 1..6),
    ) {
        let key = SigningKey::generate("gatehouse.test/props").unwrap();
        let entries: Vec<StoredEntry> = texts
            .into_iter()
            .enumerate()
            .map(|(i, t)| StoredEntry { position: i as i64 + 1, bytes: t.into_bytes() })
            .collect();
        let report = verify(&entries, &[], &key.verifier());
        prop_assert!(!report.is_clean(), "made-up entries are never a clean log");
    }
}
