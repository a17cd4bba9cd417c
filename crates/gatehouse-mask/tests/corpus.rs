//! The corpus of values that must be masked and look-alikes that must not.

use gatehouse_mask::{DetectorSpec, HashKey, Masked, MaskingEngine, Scratch, TextKind, BUILTIN};

fn engine() -> MaskingEngine {
    let detectors = BUILTIN
        .iter()
        .map(|d| DetectorSpec::builtin(d, None))
        .collect();
    MaskingEngine::new(detectors, Vec::new(), HashKey::new([1; 32])).unwrap()
}

#[test]
fn corpus() {
    let engine = engine();
    let text = include_str!("corpus.txt");
    let mut scratch = Scratch::default();
    let mut failures = Vec::new();
    let mut cases = 0;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        cases += 1;
        let (want, value) = line.split_once(" | ").expect("`expected | value`");
        let value = value.replace("\\n", "\n");
        let mut want: Vec<&str> = if want == "-" {
            Vec::new()
        } else {
            want.split(',').collect()
        };
        want.sort_unstable();
        let mut tally = engine.tally();
        let mut out = Vec::new();
        let masked = engine.mask_text(
            value.as_bytes(),
            TextKind::Plain,
            &mut out,
            &mut scratch,
            &mut tally,
        );
        let (fired, _) = tally.named(&engine);
        let mut got: Vec<&str> = fired.iter().map(|(n, _)| n.as_str()).collect();
        got.sort_unstable();
        if got != want {
            failures.push(format!(
                "line {}: {value:?}: expected {want:?}, detectors fired {got:?} -> {:?}",
                n + 1,
                String::from_utf8_lossy(&out)
            ));
            continue;
        }
        if masked == Masked::Rewritten {
            // A masked value holds nothing any detector would still find.
            let mut again = Vec::new();
            let second = engine.mask_text(
                &out,
                TextKind::Plain,
                &mut again,
                &mut scratch,
                &mut engine.tally(),
            );
            if second != Masked::Clean {
                failures.push(format!(
                    "line {}: masked output {:?} still has a hit",
                    n + 1,
                    String::from_utf8_lossy(&out)
                ));
            }
        }
    }
    assert!(cases > 100, "{cases} cases");
    assert!(
        failures.is_empty(),
        "{} of {cases} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn json_numbers_become_strings() {
    let engine = engine();
    let mut out = Vec::new();
    let mut tally = engine.tally();
    let m = engine.mask_text(
        br#"{"card": 4111111111111111, "note": "alice@example.com"}"#,
        TextKind::Json,
        &mut out,
        &mut Scratch::default(),
        &mut tally,
    );
    assert_eq!(m, Masked::Rewritten);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"{"card": "************1111", "note": "[masked:email]"}"#
    );
    assert_eq!(tally.total(), 2);
}

#[test]
fn statement_text_for_records() {
    let engine = engine();
    let mut tally = engine.tally();
    let s = engine.mask_str(
        "ALTER ROLE app PASSWORD 'hunter2'",
        &mut Scratch::default(),
        &mut tally,
    );
    assert_eq!(s, "ALTER ROLE app PASSWORD '[masked:password]'");
    let clean = engine.mask_str("SELECT 1", &mut Scratch::default(), &mut tally);
    assert!(matches!(clean, std::borrow::Cow::Borrowed(_)));
}
