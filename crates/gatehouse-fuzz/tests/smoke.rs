//! A short fuzzing run of every target on every `cargo test`: each seed of
//! `corpus/<target>/`, then random mutations of them (bit flips, inserted,
//! removed and repeated bytes, splices of two seeds, cuts) from a fixed
//! seed, so a failure repeats. Coverage-guided runs are cargo-fuzz's
//! (`fuzz/`, docs/security.md); this catches a decoder that starts to
//! panic on inputs near the known ones.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

/// Mutated inputs per target and run.
const MUTATIONS: usize = 20_000;
/// Longest input made.
const MAX_LEN: usize = 4096;

/// xorshift64*: small, fixed, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Bytes that mean something to the decoders: NULs, quotes, backslashes,
/// length-like bytes, JSON and SQL punctuation, UTF-8 lead bytes.
const INTERESTING: &[u8] = b"\0\x01\x7f\x80\xff\xc3\xe2\xf0'\"\\$;:,.{}[]-+eE0 \n\r\t";

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut v = seeds[rng.below(seeds.len())].clone();
    for _ in 0..=rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(8) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 => v.insert(at, INTERESTING[rng.below(INTERESTING.len())]),
            2 if at < v.len() => {
                let n = rng.below(v.len() - at) + 1;
                v.drain(at..at + n.min(8));
            }
            3 => {
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len() + 1);
                v.splice(at..at, other[from..].iter().copied().take(64));
            }
            4 if at < v.len() => {
                let b = v[at];
                let n = rng.below(64);
                v.splice(at..at, std::iter::repeat_n(b, n));
            }
            5 => v.truncate(at),
            6 => v.insert(at, rng.next() as u8),
            _ if !v.is_empty() => {
                // A 32-bit field overwritten: lengths and counts.
                let i = rng.below(v.len());
                for (k, b) in (rng.next() as u32).to_be_bytes().iter().enumerate() {
                    if let Some(x) = v.get_mut(i + k) {
                        *x = *b;
                    }
                }
            }
            _ => {}
        }
    }
    v.truncate(MAX_LEN);
    v
}

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "{} has no seeds", dir.display());
    seeds
}

#[test]
fn every_target_survives_its_seeds_and_their_mutations() {
    // A panic is reported with the input, then fails the test.
    std::panic::set_hook(Box::new(|_| {}));
    let mut failures = Vec::new();
    for (i, (name, target)) in gatehouse_fuzz::TARGETS.iter().enumerate() {
        let seeds = seeds(name);
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (i as u64 + 1));
        let inputs = seeds
            .iter()
            .cloned()
            .chain((0..MUTATIONS).map(|_| mutate(&mut rng, &seeds)));
        for input in inputs {
            if let Err(e) = catch_unwind(AssertUnwindSafe(|| target(&input))) {
                let why = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failures.push(format!("{name}: {why}\n  input (hex): {}", hex(&input)));
                break;
            }
        }
    }
    let _ = std::panic::take_hook();
    assert!(
        failures.is_empty(),
        "targets panicked:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_target_has_a_cargo_fuzz_binary_and_a_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = std::fs::read_to_string(root.join("../../fuzz/Cargo.toml")).unwrap();
    for (name, _) in gatehouse_fuzz::TARGETS {
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "fuzz/Cargo.toml has no [[bin]] {name}"
        );
        let bin = root.join(format!("../../fuzz/fuzz_targets/{name}.rs"));
        assert!(bin.exists(), "{} is missing", bin.display());
        assert!(root.join("corpus").join(name).is_dir());
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
