//! A witness file whose last note was cut short by a crash (anywhere, even
//! inside the signature line's dash) is mended: the partial note is cut
//! off, the whole ones stay, and the newest whole one is found.

use gatehouse_evidence::{Checkpoint, FileWitness, SigningKey, Witness};

#[tokio::test]
async fn a_torn_last_note_is_cut_off_wherever_it_was_cut() {
    let key = SigningKey::generate("gatehouse.test/witness").unwrap();
    let note = |size: u64| {
        key.sign(&Checkpoint {
            origin: "gatehouse.test/witness".into(),
            size,
            root: [size as u8; 32],
        })
    };
    let third = note(3);
    // Every cut of the third note short of its end: inside its body, its
    // signature line's dash (a multi-byte character), its signature.
    for cut in 1..third.len() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("witness.notes");
        let w = FileWitness::new(path.clone());
        w.publish(&note(1)).await.unwrap();
        w.publish(&note(2)).await.unwrap();
        let whole = std::fs::read(&path).unwrap();
        let mut torn = whole.clone();
        torn.extend_from_slice(&third.as_bytes()[..cut]);
        std::fs::write(&path, &torn).unwrap();
        let removed = w.repair().unwrap();
        let after = std::fs::read(&path).unwrap();
        assert_eq!(after, whole, "cut at byte {cut}");
        assert_eq!(removed as usize, cut, "cut at byte {cut}");
        let newest = w.newest_note().unwrap().unwrap();
        assert_eq!(
            key.verifier().open(&newest).unwrap().size,
            2,
            "cut at byte {cut}"
        );
        // And the next note starts on a line of its own.
        w.publish(&third).await.unwrap();
        assert_eq!(
            key.verifier()
                .open(&w.newest_note().unwrap().unwrap())
                .unwrap()
                .size,
            3
        );
    }
}
