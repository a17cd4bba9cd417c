//! Segment files and witness files are read from storage whoever can write
//! there may have changed: any bytes are read or refused, never a panic,
//! and verification over a segment of made-up lines never calls it clean.

use gatehouse_evidence::segment::{SegmentHeader, SegmentReader, SEGMENT_FORMAT};
use gatehouse_evidence::{split_notes, verify_store, whole_notes_end, LogSource, SigningKey};
use gatehouse_store::{Durability, SqliteEvidenceStore};
use proptest::prelude::*;
use std::path::PathBuf;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn any_segment_file_is_read_or_refused(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("segment");
        std::fs::write(&path, &bytes).unwrap();
        if let Ok(mut r) = SegmentReader::open(&path) {
            while let Ok(page) = r.next_page(7) {
                if page.is_empty() {
                    break;
                }
            }
        }
    }

    #[test]
    fn a_header_with_any_numbers_and_lines_is_verified_or_named(
        first in any::<u64>(),
        count in any::<u64>(),
        first_position in any::<i64>(),
        lines in proptest::collection::vec("[ -~]{0,40}", 1..6),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::generate("gatehouse.test/segments").unwrap();
        let header = SegmentHeader {
            format: SEGMENT_FORMAT.into(),
            number: 1,
            first,
            count,
            first_position,
            start_checkpoint: None,
            start_state: None,
            end_checkpoint: "not a note".into(),
        };
        let mut text = serde_json::to_string(&header).unwrap() + "\n";
        for l in &lines {
            text.push_str(l);
            text.push('\n');
        }
        let path: PathBuf = dir.path().join("segment");
        std::fs::write(&path, text).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let report = rt.block_on(async {
            let store = SqliteEvidenceStore::open(&dir.path().join("e.db"), Durability::Os).await.unwrap();
            let segments = vec![path];
            let log = LogSource { segments: &segments, store: &store, awaiting_purge: &[] };
            verify_store(log, Vec::new(), &key.verifier(), |_| ()).await
        });
        // Refused (numbers out of range) or named, never clean.
        if let Ok(report) = report {
            prop_assert!(!report.is_clean());
        }
    }

    #[test]
    fn any_witness_text_splits_at_a_whole_note(text in "\\PC{0,300}") {
        let end = whole_notes_end(&text);
        prop_assert!(end <= text.len() && text.is_char_boundary(end));
        let _ = split_notes(&text[..end]);
    }
}
