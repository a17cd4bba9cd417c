//! COPY rows masked field by field, decoded by the COPY's own options.

use super::syntax::Syntax;
use super::CopyPlan;
use crate::mask::SessionMasking;
use gatehouse_mask::{work, DetectorSpec, HashKey, MaskingEngine, BUILTIN};
use std::sync::Arc;

fn session() -> SessionMasking {
    let detectors = BUILTIN
        .iter()
        .map(|d| DetectorSpec::builtin(d, None))
        .collect();
    let engine = MaskingEngine::new(detectors, Vec::new(), HashKey::new([1; 32])).unwrap();
    SessionMasking::new(None, Arc::new(engine), &[])
}

/// A plan whose fields go through the detectors (no column rules).
fn plan(syntax: Syntax) -> CopyPlan {
    CopyPlan {
        syntax,
        rules: Vec::new(),
        origins: None,
        header: false,
    }
}

fn text(delimiter: u8) -> Syntax {
    Syntax::new(false, delimiter, b'"', b'"', b"\\N")
}

/// The row as the client gets it, or `None` when unchanged.
fn masked(m: &mut SessionMasking, plan: &mut CopyPlan, row: &[u8]) -> Option<Vec<u8>> {
    let mut tally = gatehouse_mask::MaskTally::default();
    let out = m.copy_row_by_plan(plan, row, &mut tally).unwrap()?;
    // A CopyData message: type, length, row.
    Some(out[5..].to_vec())
}

#[test]
fn fields_are_decoded_before_the_detectors() {
    let mut m = session();
    // DELIMITER ' ' escapes the spaces of a value (issue #28 item 8).
    let mut p = plan(text(b' '));
    assert_eq!(
        masked(&mut m, &mut p, b"1 4111\\ 1111\\ 1111\\ 1111 \\N\n").unwrap(),
        b"1 ****\\ ****\\ ****\\ 1111 \\N\n"
    );
    // Octal and hex escapes, as COPY FROM reads them.
    assert_eq!(
        masked(
            &mut m,
            &mut p,
            b"\\064111111111111111 \\x34111111111111111\n"
        )
        .unwrap(),
        b"************1111 ************1111\n"
    );
    // Nothing to mask: the row goes out as it came.
    assert!(masked(&mut m, &mut p, b"1 a\\ b \\N\n").is_none());
}

#[test]
fn csv_quotes_are_undone_before_the_detectors() {
    let mut m = session();
    // QUOTE '1' doubles every 1 of a card: 141111…1.
    let s = Syntax::new(true, b',', b'1', b'1', b"");
    let mut p = plan(s.clone());
    let out = masked(&mut m, &mut p, b"7,141111111111111111111111111111111\n").unwrap();
    let (end, quoted) = s.field_end(&out, 2).unwrap();
    let mut buf = Vec::new();
    assert_eq!(
        s.value(&out[2..end], quoted, &mut buf).unwrap(),
        b"************1111"
    );
    // ESCAPE '4' doubles its 4s.
    let s = Syntax::new(true, b',', b'"', b'4', b"");
    let mut p = plan(s);
    assert_eq!(
        masked(&mut m, &mut p, b"\"44111111111111111\"\n").unwrap(),
        b"\"************1111\"\n"
    );
}

#[test]
fn what_cannot_be_decoded_is_withheld() {
    let mut m = session();
    let mut tally = gatehouse_mask::MaskTally::default();
    let mut p = plan(text(b'\t'));
    assert!(m.copy_row_by_plan(&mut p, b"a\tb\\", &mut tally).is_err());
    let mut p = plan(Syntax::new(true, b',', b'"', b'"', b""));
    assert!(m.copy_row_by_plan(&mut p, b"a\"b,c\n", &mut tally).is_err());
    assert!(m.copy_row_by_plan(&mut p, b"\"open\n", &mut tally).is_err());
}

/// The work to mask a COPY row of `n` copies of `field`, or of one field
/// holding them all.
fn work_for(field: &[u8], n: usize, one_field: bool) -> u64 {
    let mut m = session();
    let mut p = plan(text(b' '));
    let mut row = Vec::new();
    for k in 0..n {
        if k > 0 && !one_field {
            row.push(b' ');
        }
        row.extend_from_slice(field);
    }
    row.push(b'\n');
    work::take();
    assert!(masked(&mut m, &mut p, &row).is_some());
    work::take()
}

/// Doubling a COPY row (more fields, or a longer field) doubles the work.
#[test]
fn work_is_linear_in_the_row() {
    for (field, one_field) in [
        (&b"4111\\ 1111\\ 1111\\ 1111"[..], false),
        (&b"a@b.co\\ "[..], true),
        (&b"{\"c\":\\ \"\\\\u0034111111111111111\"}\\ "[..], true),
    ] {
        let small = work_for(field, 2_000, one_field);
        let large = work_for(field, 4_000, one_field);
        let ratio = large as f64 / small as f64;
        assert!(
            (1.8..2.2).contains(&ratio),
            "{}: {small} then {large} bytes walked (x{ratio:.2})",
            String::from_utf8_lossy(field)
        );
    }
}
